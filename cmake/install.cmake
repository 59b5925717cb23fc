# install(): headers, the library, an exported shredkv::shredkv target with a
# versioned CMake package, and a pkg-config file. Everything installed is
# relocatable: the CMake files find the prefix from their own location and the
# pkg-config file from ${pcfiledir}, so `cmake --install build --prefix P`
# works for any P and the prefix may be moved afterwards.
include(CMakePackageConfigHelpers)

# Both libraries: libshredkv.a and libshredkv.so.<major> (shredkv::shredkv and
# shredkv::shredkv_shared; with BUILD_SHARED_LIBS=ON only the shared one).
set(_shredkv_install_targets shredkv)
if(NOT BUILD_SHARED_LIBS)
  list(APPEND _shredkv_install_targets shredkv_shared)
endif()
install(TARGETS ${_shredkv_install_targets} EXPORT shredkvTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/shredkv DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/shredkv/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shredkv)

# ---- CMake package: find_package(shredkv 0.1) → shredkv::shredkv -----------
set(SHREDKV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shredkv)
install(EXPORT shredkvTargets NAMESPACE shredkv:: DESTINATION ${SHREDKV_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shredkvConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shredkvConfig.cmake INSTALL_DESTINATION ${SHREDKV_CMAKE_DIR}
  NO_SET_AND_CHECK_MACRO)
# 0.x: a minor version may break the API, so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shredkvConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shredkvConfig.cmake ${PROJECT_BINARY_DIR}/shredkvConfigVersion.cmake
        DESTINATION ${SHREDKV_CMAKE_DIR})

# ---- pkg-config: prefix relative to the .pc file's own directory -------------
set(SHREDKV_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${SHREDKV_PC_DIR}")
  set(SHREDKV_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _shredkv_pc_up "/p/${SHREDKV_PC_DIR}" "/p")
  string(REGEX REPLACE "/$" "" _shredkv_pc_up "${_shredkv_pc_up}")
  set(SHREDKV_PC_PREFIX "\${pcfiledir}/${_shredkv_pc_up}")
endif()
foreach(_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(SHREDKV_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(SHREDKV_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
# A static libshredkv needs its dependencies on every link line, so plain
# `pkg-config --libs shredkv` must name them (issue 16: they were only in
# Libs.private, which needs --static); a shared one links them itself.
set(_shredkv_pc_deps "-llmdb -lsodium -lxxhash -pthread")
if(BUILD_SHARED_LIBS)
  set(SHREDKV_PC_LIBS "")
  set(SHREDKV_PC_LIBS_PRIVATE "${_shredkv_pc_deps}")
else()
  set(SHREDKV_PC_LIBS " ${_shredkv_pc_deps}")
  set(SHREDKV_PC_LIBS_PRIVATE "")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/shredkv.pc.in ${PROJECT_BINARY_DIR}/shredkv.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/shredkv.pc DESTINATION ${SHREDKV_PC_DIR})
