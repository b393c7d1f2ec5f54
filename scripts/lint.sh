#!/usr/bin/env bash
# The habits CI holds the code to: clang-format on every C and C++ file (BPF
# included), clang-tidy (.clang-tidy) on every C++ translation unit of the
# build. Needs a configured build/ (compile_commands.json): run
# scripts/build.sh first. Exit 1 with the offending files named.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || { echo "lint: no build/compile_commands.json (run scripts/build.sh)" >&2; exit 2; }
status=0

mapfile -t sources < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')
unformatted=()
for f in "${sources[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  echo "lint: not clang-formatted (clang-format -i FILE): ${unformatted[*]}"
  status=1
else
  echo "lint: clang-format: ${#sources[@]} files ok"
fi

mapfile -t units < <(git ls-files 'loader/*.cpp' 'cli/*.cpp' 'agent/*.cpp' 'tests/*.cpp' 'bench/*.cpp')
if printf '%s\n' "${units[@]}" |
  xargs -P"$(nproc)" -n4 clang-tidy -p build --quiet >build/clang-tidy.log 2>&1; then
  echo "lint: clang-tidy: ${#units[@]} files ok"
else
  grep -E '(warning|error):' build/clang-tidy.log | sort -u | head -40
  echo "lint: clang-tidy found problems (all of them: build/clang-tidy.log)"
  status=1
fi
exit $status
