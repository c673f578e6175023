# libFuzzer targets for both decoders, each run briefly as a ctest test: a bounded number of inputs
# (CRACKSEG_FUZZ_RUNS) with a time cap, starting from the golden files and the corpus that earlier
# runs in this build directory grew.
set(CRACKSEG_FUZZ_RUNS 200000 CACHE STRING "inputs each fuzz test tries")
set(CRACKSEG_FUZZ_MAX_SECONDS 20 CACHE STRING "time cap of each fuzz test")

file(GLOB mask_seeds "${golden_dir}/mask_*.bin" "${golden_dir}/heartbeat.bin")
file(GLOB serial_seeds "${golden_dir}/serial_*.bin")

foreach(target fuzz_mask_message fuzz_serial)
    add_executable(${target} ${target}.cpp)
    target_link_libraries(${target} PRIVATE crackseg_test_support)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    crackseg_warnings(${target})

    # libFuzzer adds new inputs to the first corpus directory only: the seeds stay a copy.
    set(corpus "${CMAKE_CURRENT_BINARY_DIR}/fuzz/${target}/corpus")
    set(seeds "${CMAKE_CURRENT_BINARY_DIR}/fuzz/${target}/seeds")
    file(MAKE_DIRECTORY "${corpus}")
    if(target STREQUAL "fuzz_serial")
        file(COPY ${serial_seeds} DESTINATION "${seeds}")
        set(max_len 256)  # a few frames of at most 64 bytes: longer streams only repeat the same states
    else()
        file(COPY ${mask_seeds} DESTINATION "${seeds}")
        set(max_len 4096)  # room for every header field, boxes and a small mask
    endif()
    add_test(NAME ${target}
             COMMAND ${target} -runs=${CRACKSEG_FUZZ_RUNS} -max_total_time=${CRACKSEG_FUZZ_MAX_SECONDS}
                     -max_len=${max_len} -print_final_stats=1 "${corpus}" "${seeds}")
    set_tests_properties(${target} PROPERTIES TIMEOUT 120)
endforeach()
