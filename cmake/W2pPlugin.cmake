# Helpers every component uses, so that kernels, plugins, tests and benchmarks are built alike.

# w2p_add_kernel(name SOURCES ... [LIBS ...]): a static library of pure code (no w2p types),
# linked into the plugin that wraps it and into its tests.
function(w2p_add_kernel name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${ARG_INCLUDES})
  target_link_libraries(${name} PUBLIC ${ARG_LIBS})
  set_target_properties(${name} PROPERTIES CXX_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON)
  w2p_set_warnings(${name})
endfunction()

# w2p_add_plugin(name SOURCES ... [LIBS ...]): builds libw2p_<name>.so into the plugin dir,
# hidden visibility (only the descriptor alias is exported), no undefined symbols.
function(w2p_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  set(target w2p_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE w2p::framework ${ARG_LIBS})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${W2P_BUILD_PLUGIN_DIR})
  endif()
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME w2p_${name} PREFIX lib
    LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR}
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    INSTALL_RPATH "$ORIGIN/../..")
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  w2p_set_warnings(${target})
  if(NOT ARG_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION ${W2P_INSTALL_PLUGIN_DIR})
  endif()
endfunction()

# w2p_add_test(name SOURCES ... [LIBS ...] [LABELS unit|integration|e2e]): a GoogleTest binary
# whose tests are registered with ctest one by one.
function(w2p_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} w2p_test_support GTest::gtest_main GTest::gmock)
  w2p_set_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120
                       PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# w2p_add_benchmark(name SOURCES ... [LIBS ...]): a Google Benchmark binary (not run by ctest).
function(w2p_add_benchmark name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT W2P_BUILD_BENCHMARKS)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} benchmark::benchmark)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  w2p_set_warnings(${name})
endfunction()

# w2p_add_subdirectories([ONLY list]): adds every child folder that has a CMakeLists.txt, in name
# order, so that a new plugin, tool or test folder needs no edit in its parent. With ONLY, folders
# not in the list are left out (plugins/: W2P_PLUGIN_DIRS).
function(w2p_add_subdirectories)
  cmake_parse_arguments(ARG "" "" "ONLY" ${ARGN})
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(dir IN LISTS children)
    if(ARG_ONLY AND NOT dir IN_LIST ARG_ONLY)
      continue()
    endif()
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()
