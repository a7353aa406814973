# Shared by the bench scripts (sourced): needs DATA, GEN, LOG and a log function.

# Generates once; reuses a file whose stamp (generator arguments and size) still matches, so that the
# scripts share one corpus in $DATA.
generate() {
  local name=$1 args=$2 file=$DATA/$1.safetensors stamp=$DATA/$1.stamp
  local want="$args --family kohya --seed 1"
  if [ -f "$file" ] && [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$want" ] &&
     [ "$(stat -c %s "$file")" = "$(sed -n 2p "$stamp")" ]; then
    return
  fi
  log "generating $name ($want)"
  # shellcheck disable=SC2086  # the arguments are words on purpose
  "$GEN" $want -o "$file" --force >>"$LOG"
  printf '%s\n%s\n' "$want" "$(stat -c %s "$file")" >"$stamp"
}

field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" | tail -1; }  # value of KEY=VALUE on a summary line
median() { sort -g | awk '{v[NR]=$1} END {print NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }     # arithmetic without bc
