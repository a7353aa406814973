# The portable release binary (-DLORAKIT_DIST=ON, `make dist`, build folder build-dist): the CLI only,
# built for x86-64-v3 (AVX2, FMA, F16C) instead of this CPU, needing nothing beyond glibc at run time.
# Included by CMakeLists.txt before the libraries are found and the targets defined; it sets the flags
# and choices that must come first, and defines lorakit_dist_package(), called once `lorakit` exists.

set(LORAKIT_NATIVE OFF)  # a release runs on other machines
set(LORAKIT_BUILD_TESTS OFF)
set(LORAKIT_BUILD_BENCH OFF)
add_compile_options(-march=x86-64-v3 -mtune=generic)

# libcrypto.a comes with Debian's libssl-dev. Debian ships no libfmt.a: fmt is compiled in, header-only.
set(OPENSSL_USE_STATIC_LIBS TRUE)
set(LORAKIT_FMT fmt::fmt-header-only)

# Links libstdc++, libgcc and the CPU check into TARGET, and adds the `dist` target, which writes
# dist/lorakit-VERSION-linux-x86_64.tar.gz: the stripped binary, README.md and README-dist.md.
function(lorakit_dist_package target)
  set(check ${PROJECT_SOURCE_DIR}/tools/lorakit/dist/cpu_check.cpp)
  target_sources(${target} PRIVATE ${check})
  # Baseline x86-64: this code runs before the CPU is known to have AVX (flags given last win).
  set_source_files_properties(${check} PROPERTIES COMPILE_OPTIONS "-march=x86-64;-mtune=generic")
  target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)

  set(name lorakit-${PROJECT_VERSION}-linux-x86_64)
  set(stage ${CMAKE_BINARY_DIR}/dist-stage)
  set(tarball ${PROJECT_SOURCE_DIR}/dist/${name}.tar.gz)
  set(readme_dist ${PROJECT_SOURCE_DIR}/tools/lorakit/dist/README-dist.md)
  add_custom_command(OUTPUT ${tarball}
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${stage}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${stage}/${name} ${PROJECT_SOURCE_DIR}/dist
    COMMAND ${CMAKE_STRIP} --strip-all -o ${stage}/${name}/lorakit $<TARGET_FILE:${target}>
    COMMAND ${CMAKE_COMMAND} -E copy ${PROJECT_SOURCE_DIR}/README.md ${readme_dist} ${stage}/${name}
    # Sorted, with neutral owners and no name or time in the gzip header.
    COMMAND tar --sort=name --owner=0 --group=0 --numeric-owner "--use-compress-program=gzip -n"
            -C ${stage} -cf ${tarball} ${name}
    COMMAND ${CMAKE_COMMAND} -E echo "dist: ${tarball}"
    DEPENDS ${target} ${PROJECT_SOURCE_DIR}/README.md ${readme_dist}
    VERBATIM)
  add_custom_target(dist DEPENDS ${tarball})
endfunction()
