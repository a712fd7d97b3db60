# Thin wrapper around CMake: `make` builds everything into build/.
#   make            release build (build/citycmd, build/www)
#   make asan       ASan+UBSan build for tests (build/asan/citycmd)
#   make test       unit tests (ctest) on the sanitizer build
#   make format     clang-format every C file
#   make clean
JOBS ?= 2
CMAKE_FLAGS ?=
ifneq ($(CI),)
CMAKE_FLAGS += -DCITYCMD_WERROR=ON
endif

.PHONY: all asan test format clean
all:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j$(JOBS)

asan:
	@cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCITYCMD_SANITIZE=ON -DCITYCMD_WEB=ON -DCITYCMD_TESTS_REQUIRED=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/asan -j$(JOBS)

test: asan
	@cd build/asan && ctest --output-on-failure --no-tests=error -j$(JOBS)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	@rm -rf build
