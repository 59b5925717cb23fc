# CTest export_schema_valid: runs export_sample, then validate_export.py on
# its two files. Fails if either step fails. Variables (all required):
# SAMPLE, PYTHON, VALIDATOR, SCHEMA, LINE_SCHEMA, OUT_DIR.
foreach(var SAMPLE PYTHON VALIDATOR SCHEMA LINE_SCHEMA OUT_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "export_schema_test.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${OUT_DIR}")
file(MAKE_DIRECTORY "${OUT_DIR}")
set(doc "${OUT_DIR}/export.json")
set(lines "${OUT_DIR}/export.ndjson")

execute_process(COMMAND "${SAMPLE}" "${doc}" "${lines}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "export_sample failed (${rc})")
endif()

execute_process(COMMAND "${PYTHON}" -c "import jsonschema" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PYTHON} cannot import jsonschema: install the Debian package python3-jsonschema "
                      "(scripts/setup-deps.sh does)")
endif()

execute_process(COMMAND "${PYTHON}" "${VALIDATOR}" "${SCHEMA}" "${doc}" "${LINE_SCHEMA}" "${lines}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "validate_export.py failed (${rc}); the files are kept in ${OUT_DIR}")
endif()
