# Installs the built client into a scratch prefix, builds tests/native/consumer against it with
# find_package(crackseg_client), and runs its serial receiver on a golden stream.
#   cmake -DBUILD_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=... -DGOLDEN_DIR=... -DGENERATOR=...
#         -DC_COMPILER=... -DCXX_COMPILER=... -P installed_package_test.cmake

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
    endif()
    set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
run("${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build")

execute_process(COMMAND "${WORK_DIR}/build/serial_receiver" INPUT_FILE "${GOLDEN_DIR}/serial_stream.bin"
                OUTPUT_VARIABLE summaries RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT summaries STREQUAL "seq=1 coverage=471\nseq=4294967295 coverage=10000\n")
    message(FATAL_ERROR "serial_receiver on serial_stream.bin (${rc}):\n${summaries}")
endif()
