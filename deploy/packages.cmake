# Debian packages: `cpack -G DEB` in a build configured with the prefix
# /usr (deploy/scripts/package.sh builds and checks them). One package per
# install component (CPACK_DEB_COMPONENT_INSTALL):
#
#   component  package       contents
#   agent      hpcxl-agent   the agent, its systemd unit, /etc/hpcxl/agent.ini
#                            (a conffile), the empty /etc/hpcxl/tls
#   lib        libhpcxl0     libhpcxl.so.0, the runtime library alone
#   cli        hpcxl         the hpcxl command
#   dev        libhpcxl-dev  headers, libhpcxl.so, hpcxl.pc, the CMake package
#
# The CLI has a package of its own rather than sharing the library's:
# Debian policy (8.2) keeps programs out of a shared library's package, so
# a program linking libhpcxl (a scheduler plugin, say) brings neither the
# command nor what only the command uses (inih, jansson). The library's
# package is named after its soname, as policy 8.1 asks: libhpcxl.so.0
# (controller/CMakeLists.txt: SOVERSION, the major version) is in
# libhpcxl0, so that a libhpcxl.so.1 can come in a libhpcxl1 installable
# beside it. The Depends of hpcxl and libhpcxl-dev follow the name.
#
# Depends: dpkg-shlibdeps reads what each binary links (libc6, libnng1, ...);
# our own packages depend on each other by version (CPACK_COMPONENT_*_DEPENDS).
#
# Each package also holds /usr/share/doc/<package>/copyright (DEP-5,
# deploy/debian/copyright) and changelog.Debian.gz (deploy/debian/
# changelog.in, filled in below), as Debian policy (12.5, 12.7) asks;
# package.sh runs lintian on the packages. (`cmake --install` installs them
# too, under <prefix>/share/doc/<package>: install rules cannot tell the two.)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hpcxl)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# The Debian revision: packages 0.1.0-1, ... The version is not native
# (no revision): these packages are made from the upstream sources, and a
# native one would have to call its changelog changelog.gz.
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(hpcxl_deb_version ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})
# The Maintainer field and the changelog's signature. The project has no
# mail address of its own: a site that builds its packages names itself
# (lintian refuses root and hosts like localhost).
set(HPCXL_DEB_MAINTAINER "hpcxl maintainers <hpcxl@example.org>" CACHE STRING
	"Maintainer of the Debian packages: \"Name <address>\"")
set(CPACK_PACKAGE_CONTACT ${HPCXL_DEB_MAINTAINER})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent lib cli dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The CLI links libhpcxl.so.0 from this build: dpkg-shlibdeps finds it here
# (it belongs to no installed package; its Depends comes from below).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/lib)
# libhpcxl0's shlibs file: a package built against it elsewhere gets
# "libhpcxl0 (>= VERSION)" from dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME hpcxl-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION "hpcxl node agent: runs and closes Excel worker sessions
One daemon per compute node (systemd unit hpcxl-agent.service). It
starts workers from the profiles of /etc/hpcxl/agent.ini and closes a
session's whole process set within the deadline it is given.")
# agent.ini is a conffile: an upgrade keeps the operator's edits. The
# maintainer scripts are in deploy/debian/hpcxl-agent/.
file(WRITE ${PROJECT_BINARY_DIR}/deploy/debian/conffiles
	"${CMAKE_INSTALL_FULL_SYSCONFDIR}/hpcxl/agent.ini\n")
set(hpcxl_agent_scripts ${PROJECT_SOURCE_DIR}/deploy/debian/hpcxl-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
	${PROJECT_BINARY_DIR}/deploy/debian/conffiles
	${hpcxl_agent_scripts}/postinst ${hpcxl_agent_scripts}/prerm
	${hpcxl_agent_scripts}/postrm)

# libhpcxl<soname version> (policy 8.1): the soname's, read from the target.
get_target_property(hpcxl_soversion hpcxl SOVERSION)
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libhpcxl${hpcxl_soversion})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# ldconfig runs through dpkg's trigger, after the whole transaction, as
# policy 8.1.1 asks (lintian: lacks-ldconfig-trigger). CPack still writes
# its own postinst and postrm calling ldconfig (it does for every library
# under /usr/lib unless the package brings both scripts): a second run,
# harmless, which lintian warns about (maintscript-calls-ldconfig).
file(WRITE ${PROJECT_BINARY_DIR}/deploy/debian/libhpcxl/triggers
	"activate-noawait ldconfig\n")
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA
	${PROJECT_BINARY_DIR}/deploy/debian/libhpcxl/triggers)
set(CPACK_COMPONENT_LIB_DESCRIPTION "hpcxl controller library
libhpcxl opens, closes and inspects hpcxl sessions on a roster of
agents: one request to every node, one report row per node.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME hpcxl)
set(CPACK_COMPONENT_CLI_DEPENDS lib)
set(CPACK_COMPONENT_CLI_DESCRIPTION "command-line client: open, close and inspect hpcxl sessions
The hpcxl command over libhpcxl: open-session, close-session, status,
renew-session, ping and clear-unhealthy on a roster of agents.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libhpcxl-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_DEV_DESCRIPTION "hpcxl controller library: development files
Headers (<hpcxl/hpcxl.h>, C and C++), pkg-config file hpcxl.pc and
the CMake package: find_package(hpcxl CONFIG), target hpcxl::hpcxl.")

# changelog.Debian.gz: one entry, for this version. Its date is
# SOURCE_DATE_EPOCH's when set, else the last commit's (the same sources
# give the same file), else the time of the configure (no git).
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
	execute_process(COMMAND git log -1 --format=%ct
		WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
		OUTPUT_VARIABLE commit_time OUTPUT_STRIP_TRAILING_WHITESPACE
		RESULT_VARIABLE git_failed ERROR_QUIET)
	if(NOT git_failed AND commit_time)
		set(ENV{SOURCE_DATE_EPOCH} ${commit_time})
	endif()
endif()
string(TIMESTAMP changelog_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
if(commit_time)
	unset(ENV{SOURCE_DATE_EPOCH})
endif()
# configure_file() rewrites it only when its text changes: no new gzip.
configure_file(deploy/debian/changelog.in
	${PROJECT_BINARY_DIR}/deploy/debian/changelog.Debian @ONLY)
hpcxl_gzip(hpcxl_deb_changelog
	${PROJECT_BINARY_DIR}/deploy/debian/changelog.Debian)
foreach(component IN LISTS CPACK_COMPONENTS_ALL)
	string(TOUPPER ${component} c)
	install(FILES ${PROJECT_SOURCE_DIR}/deploy/debian/copyright
		${PROJECT_BINARY_DIR}/deploy/debian/changelog.Debian.gz
		DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${CPACK_DEBIAN_${c}_PACKAGE_NAME}
		COMPONENT ${component})
endforeach()

include(CPack)
