# The client's dependencies, found through pkg-config. Shared by the build and the installed package
# config, so that a consumer's find_package(crackseg_client) recreates exactly the targets the
# library links. GLOBAL: the targets must be visible from every directory that links the library.
find_package(PkgConfig REQUIRED)
pkg_check_modules(crackseg_zmq REQUIRED IMPORTED_TARGET GLOBAL libzmq)
pkg_check_modules(crackseg_zlib REQUIRED IMPORTED_TARGET GLOBAL zlib)
pkg_check_modules(crackseg_png REQUIRED IMPORTED_TARGET GLOBAL libpng)
