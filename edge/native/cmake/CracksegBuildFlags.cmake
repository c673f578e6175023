# Build-wide flags of the native client: sanitizers and fuzzing instrumentation apply to every
# target (library, example, tests), warnings only to this project's own targets.

if(CRACKSEG_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CRACKSEG_FUZZ needs clang (libFuzzer); configure with CC=clang CXX=clang++")
endif()

set(_crackseg_sanitizers "")
if(CRACKSEG_SANITIZE)
    set(_crackseg_sanitizers "address,undefined")
endif()
if(CRACKSEG_FUZZ)
    # Coverage instrumentation everywhere; only the fuzz targets link libFuzzer's main.
    string(JOIN "," _crackseg_sanitizers ${_crackseg_sanitizers} "fuzzer-no-link")
endif()
if(_crackseg_sanitizers)
    # Any finding fails the test that triggered it, instead of printing and carrying on.
    add_compile_options(-fsanitize=${_crackseg_sanitizers} -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
    add_link_options(-fsanitize=${_crackseg_sanitizers})
endif()

# Warnings for a target of this project (not for dependencies or consumers).
function(crackseg_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
                                             $<$<BOOL:${CRACKSEG_WERROR}>:-Werror>)
endfunction()
