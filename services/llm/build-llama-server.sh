#!/usr/bin/env bash
# Build llama.cpp's C++ llama-server from the llama-cpp-python sdist on PyPI (the llama.cpp it vendors), the one
# copy of this recipe: `make llm-setup` runs it into the venv, services/llm/Dockerfile into the llamacpp image.
#
#   services/llm/build-llama-server.sh VERSION DEST_BINARY [JOBS]
#   services/llm/build-llama-server.sh --isa-flags   # the CPU flags alone (the Makefile's llama-cpp-python build)
#
# Needs pip (PIP, default `pip`), cmake and a C++ compiler. The PyPI sdist is the only download: no git clone,
# no model hub, no web UI fetch, so it builds wherever PyPI answers (an air-gapped site's mirror included).
set -euo pipefail

# llama.cpp's default native build crashes (SIGSEGV, AMX path) on the EPYC CPUs we run on, and a native build
# would not run on another machine anyway: pin a portable x86-64 ISA (AVX2/FMA, no AVX-512/AMX).
isa_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
	-DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF"
if [ "${1:-}" = --isa-flags ]; then echo $isa_flags; exit 0; fi

version=${1:?llama-cpp-python version}
dest=${2:?destination of the llama-server binary}
jobs=${3:-$(nproc 2>/dev/null || echo 2)}
pip=${PIP:-pip}
work=${WORK_DIR:-$(mktemp -d)}

command -v cmake >/dev/null && command -v c++ >/dev/null ||
	{ echo "llama-server needs cmake and a C++ compiler (Debian: apt-get install cmake g++)" >&2; exit 1; }
mkdir -p "$work"
$pip download -q --no-deps --no-binary llama-cpp-python -d "$work" "llama-cpp-python==$version"
tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"

# llama-server closes the connection after every streamed answer although it announced keep-alive, so a client
# that reuses it at once races the close ("Server disconnected without sending a response"). The stream has
# ended (done() sent the last chunk): report success and keep the connection (docs/llm-serving.md).
sed -i 's|^\([[:space:]]*\)return has_next;$|\1return true; // ragstack: stream done, keep the connection|' \
	"$src/tools/server/server-http.cpp"
grep -q "ragstack: stream done" "$src/tools/server/server-http.cpp"

# llama-server alone, statically linked, offline: no HTTPS client, no web UI (the prebuilt one is a download at
# build time). LLAMA_CURL is deprecated and ignored in this llama.cpp; kept so an older one stays offline too.
# shellcheck disable=SC2086  # the flags are words
cmake -S "$src" -B "$work/build" $isa_flags \
	-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >"$work/configure.log"
cmake --build "$work/build" --target llama-server -j"$jobs" >"$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
install -D -m 0755 "$work/build/bin/llama-server" "$dest"
"$dest" --version
rm -rf "$work"
