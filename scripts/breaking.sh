#!/usr/bin/env bash
# `buf breaking` for the contract (proto/, as it is in the working tree) against the contract
# client teams already build on. Run by `npm test`; the policy is in docs/api.md ("The contract
# for client teams"). Baselines, each the proto/ of a commit:
#   main      the main branch (local `main`, else `origin/main`): what a branch would change;
#             for a branch behind main's proto/, the commit it left main at
#   previous  the contract before its latest change (HEAD's proto/ when proto/ has uncommitted
#             edits, else the parent of the newest commit that changed proto/): on main itself,
#             where the first baseline compares a commit with itself, this is the one that bites
#   release   the newest `v*` tag reachable from HEAD, when there is one
# A baseline git cannot provide (no main branch, a shallow clone) is reported and left out.
# Each baseline is extracted with `git archive` and compared with today's buf.yaml and
# third_party/, so this works the same in a clone, a worktree and CI's fresh clone of main.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "buf breaking: not a git checkout, no baseline to compare with" >&2
  exit 0
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/talkhub-breaking.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# name, then the commit whose proto/ is the baseline (empty: not available, with why).
baselines=()
if main=$(git rev-parse --verify -q "main^{commit}" || git rev-parse --verify -q "origin/main^{commit}"); then
  # A branch behind main would "delete" what main added since: then the point it left main at.
  if base=$(git merge-base HEAD "$main") && [ -n "$(git diff --name-only "$base" "$main" -- proto)" ]; then
    echo "buf breaking: main's proto/ changed since this branch left it; comparing with the merge base (rebase to compare with main's tip)" >&2
    baselines+=("main $base")
  else
    baselines+=("main $main")
  fi
else
  echo "buf breaking: no main branch here, main baseline left out" >&2
fi
if [ -n "$(git status --porcelain -- proto)" ]; then
  baselines+=("previous $(git rev-parse HEAD)")
else
  latest=$(git log -1 --format=%H -- proto)
  if previous=$(git rev-parse --verify -q "$latest^1^{commit}"); then
    baselines+=("previous $previous")
  elif [ "$(git rev-parse --is-shallow-repository)" = true ]; then
    echo "buf breaking: shallow clone, the commit before $latest is not here, previous baseline left out" >&2
  fi
fi
if release=$(git describe --tags --abbrev=0 --match 'v*' HEAD 2>/dev/null); then
  baselines+=("release:$release $(git rev-parse "$release^{commit}")")
fi

status=0
for entry in "${baselines[@]}"; do
  read -r name commit <<<"$entry"
  dir="$scratch/$name"
  mkdir -p "$dir"
  if ! git ls-tree -d --name-only "$commit" -- proto | grep -q .; then
    echo "buf breaking: $name ($commit) has no proto/, nothing to compare" >&2
    continue
  fi
  git archive "$commit" -- proto | tar -x -C "$dir"
  cp buf.yaml "$dir/"
  cp -r third_party "$dir/"
  echo "buf breaking against $name (${commit:0:12})"
  if ! buf breaking --against "$dir"; then
    echo "buf breaking: proto/ breaks the contract of $name (${commit:0:12}); see docs/api.md for the policy" >&2
    status=1
  fi
done
exit $status
