# Sourced by the bench scripts that run the reference: make PyTorch compute with OpenBLAS, as a
# user's install would, not with netlib's reference BLAS, which Debian's python3-torch falls back
# on and which makes the reference several times slower than it is.
openblas_check() {
	local lib=/usr/lib/x86_64-linux-gnu/libblas.so.3
	if ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		echo "bench: installing libopenblas0-pthread so that the reference runs on OpenBLAS" >&2
		$sudo apt-get install -y -qq libopenblas0-pthread >/dev/null 2>&1 ||
			echo "bench: WARNING: could not install libopenblas0-pthread" >&2
	fi
	case "$(readlink -f "$lib" 2>/dev/null)" in
	*openblas*) ;;
	*) echo "bench: WARNING: $lib is $(readlink -f "$lib" 2>/dev/null || echo missing), not OpenBLAS:" \
		"the reference runs on netlib's reference BLAS and its times are not a fair comparison" \
		"(apt-get install libopenblas0-pthread; update-alternatives --config libblas.so.3-x86_64-linux-gnu)" >&2 ;;
	esac
}
