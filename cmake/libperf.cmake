# libperf (+ the libapi it needs) built from Debian's linux-source tarball into the build dir.
#
# Debian ships no libperf-dev, so at configure time the few directories libperf needs are
# extracted from /usr/src/linux-source-6.12.tar.xz and built with libperf's own Makefile into
# static libraries. This happens once per build dir (a stamp names the tarball's size and
# time); the tarball is a configure dependency, so installing or updating the package re-runs
# it. Anything missing or failing is a warning, never a build failure: mmstorm is then built
# with perf counting compiled out (src/core/perf.c reports "libperf not built" per case).
#
# Defines the INTERFACE target ms_libperf: empty, or the include path, MMSTORM_HAVE_LIBPERF=1
# and the two archives. Link it PRIVATE to mmstorm_core (static: the archives still reach
# every executable that links the core).

option(MMSTORM_LIBPERF "Build libperf from MMSTORM_LINUX_SOURCE for per-case perf counters" ON)
set(MMSTORM_LINUX_SOURCE "/usr/src/linux-source-6.12.tar.xz" CACHE FILEPATH
    "Linux source tarball libperf is built from (Debian package linux-source-6.12)")

add_library(ms_libperf INTERFACE)
set(MMSTORM_HAVE_LIBPERF OFF)

function(ms_libperf_build tarball dir)
	get_filename_component(name "${tarball}" NAME)
	string(REGEX REPLACE "\\.tar(\\.[A-Za-z0-9]+)?$" "" top "${name}")
	set(src "${dir}/src/${top}")
	set(obj "${dir}/obj/")
	file(SIZE "${tarball}" size)
	file(TIMESTAMP "${tarball}" mtime "%s" UTC)
	set(want "${tarball} ${size} ${mtime}")
	if(EXISTS "${dir}/stamp")
		file(READ "${dir}/stamp" have)
	endif()
	if(NOT "${have}" STREQUAL "${want}" OR NOT EXISTS "${obj}libperf.a"
	   OR NOT EXISTS "${obj}libapi.a")
		find_program(MMSTORM_MAKE NAMES gmake make)
		if(NOT MMSTORM_MAKE)
			message(WARNING "libperf: no make program; building without perf counters")
			return()
		endif()
		message(STATUS "libperf: building from ${tarball} (once per build dir)")
		file(REMOVE_RECURSE "${dir}")
		file(MAKE_DIRECTORY "${dir}/src" "${obj}")
		# Only what tools/lib/perf/Makefile reads: a few MB out of the whole tree.
		execute_process(
			COMMAND tar -xf "${tarball}" -C "${dir}/src" --wildcards
				--no-wildcards-match-slash
				"${top}/tools/lib/perf" "${top}/tools/lib/api"
				"${top}/tools/lib/*.c"
				"${top}/tools/include" "${top}/tools/arch/*/include"
				"${top}/tools/scripts" "${top}/tools/build"
			RESULT_VARIABLE rc ERROR_VARIABLE err)
		if(NOT rc EQUAL 0)
			message(WARNING "libperf: extracting ${tarball} failed: ${err}\n"
				"building without perf counters")
			return()
		endif()
		# A make or compiler setting from the calling environment is not libperf's to see.
		execute_process(
			COMMAND ${CMAKE_COMMAND} -E env --unset=MAKEFLAGS --unset=MFLAGS
				--unset=MAKELEVEL --unset=CFLAGS --unset=LDFLAGS
				${MMSTORM_MAKE} -C "${src}/tools/lib/perf" "O=${obj}"
				"CC=${CMAKE_C_COMPILER}" "${obj}libperf.a" "${obj}libapi.a"
			RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
		if(NOT rc EQUAL 0)
			message(WARNING "libperf: make failed:\n${out}\n"
				"building without perf counters")
			return()
		endif()
		file(WRITE "${dir}/stamp" "${want}")
	endif()
	target_include_directories(ms_libperf SYSTEM INTERFACE "${src}/tools/lib/perf/include")
	target_compile_definitions(ms_libperf INTERFACE MMSTORM_HAVE_LIBPERF=1)
	target_link_libraries(ms_libperf INTERFACE "${obj}libperf.a" "${obj}libapi.a")
	set(MMSTORM_HAVE_LIBPERF ON PARENT_SCOPE)
endfunction()

if(MMSTORM_LIBPERF AND EXISTS "${MMSTORM_LINUX_SOURCE}")
	set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${MMSTORM_LINUX_SOURCE}")
	ms_libperf_build("${MMSTORM_LINUX_SOURCE}" "${CMAKE_BINARY_DIR}/libperf")
elseif(MMSTORM_LIBPERF)
	# Installing the package later changes the directory: cmake re-runs and picks it up.
	get_filename_component(_ms_lp_parent "${MMSTORM_LINUX_SOURCE}" DIRECTORY)
	if(IS_DIRECTORY "${_ms_lp_parent}")
		set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_ms_lp_parent}")
	endif()
	message(STATUS "libperf: ${MMSTORM_LINUX_SOURCE} not found (apt-get install "
		"linux-source-6.12); perf counters compiled out")
endif()
if(MMSTORM_HAVE_LIBPERF)
	message(STATUS "libperf: per-case perf counters enabled")
endif()
