# install(): headers, the library, an exported shredkv::shredkv target with a
# versioned CMake package, and a pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS shredkv EXPORT shredkvTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/shredkv DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/shredkv/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shredkv)

set(SHREDKV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shredkv)
install(EXPORT shredkvTargets NAMESPACE shredkv:: DESTINATION ${SHREDKV_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shredkvConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shredkvConfig.cmake INSTALL_DESTINATION ${SHREDKV_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shredkvConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shredkvConfig.cmake ${PROJECT_BINARY_DIR}/shredkvConfigVersion.cmake
        DESTINATION ${SHREDKV_CMAKE_DIR})

configure_file(${PROJECT_SOURCE_DIR}/cmake/shredkv.pc.in ${PROJECT_BINARY_DIR}/shredkv.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/shredkv.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
