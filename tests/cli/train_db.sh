#!/bin/sh
# `rlhf rm|dpo|kto|sft --db feedback.db`: the trainers read the judgements
# people posted to `rlhf serve` straight from its database, each with its
# annotator and groups (--group selects on them); the database is opened
# read-only and left byte-identical; a missing or foreign file is exit 1 with
# a message; --db with --records is a usage error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/_serve_lib.sh"
DB="$TMP/f.db"
"$RLHF" annotators add --db "$DB" --name alice --group red >"$TMP/t1" 2>/dev/null
"$RLHF" annotators add --db "$DB" --name bob >"$TMP/t2" 2>/dev/null
start_server "$DB" --model dummy:a --model dummy:b --dummy-delay-ms 0
expect_true "server started" [ -n "$PORT" ]
# alice: 3 pairs (A better) + 3 thumbs up; bob: 1 pair (B better) + 1 thumbs down
judge() { # who prompt choice thumb
  login "$(grep '^rlhf1' "$TMP/$1")"
  api POST /api/compare "{\"prompt\":\"say $2\",\"k\":2}"; expect_code 200 "compare"
  GA=$(sed -n 's/.*"items":\[{"id":\([0-9]*\).*/\1/p' "$TMP/body")
  GB=$(sed -n 's/.*"items":\[{"id":[0-9]*,[^}]*},{"id":\([0-9]*\).*/\1/p' "$TMP/body")
  api POST /api/pair "{\"generations\":[$GA,$GB],\"choice\":\"$3\"}"; expect_code 201 "pair"
  api POST /api/thumbs "{\"generation\":$GA,\"thumb\":$4}"; expect_code 201 "thumbs"
}
judge t1 one A 1; judge t1 two A 1; judge t1 three A 1; judge t2 four B -1
printf 'hello there how are you\nsay the word please you said maybe indeed perhaps certainly\n' > "$TMP/text.txt"
"$RLHF" tokenizer train --input "$TMP/text.txt" --vocab-size 300 --out "$TMP/tok.bin" --quiet
S="--threads 1 --layers 1 --heads 1 --channels 16 --seq 128 --steps 1 --val-fraction 0 --tokenizer $TMP/tok.bin"
# while the server runs (judgements still in its WAL) a trainer sees them all
expect_exit 0 "$RLHF" rm --db "$DB" --out "$TMP/rm_live.ckpt" $S
expect_out "8 judgements from the feedback database"
stop_server
expect_sql "SELECT count(*) FROM judgements" 8
SUM=$(sha256sum "$DB" | cut -d' ' -f1)

expect_exit 0 "$RLHF" rm --db "$DB" --out "$TMP/rm.ckpt" $S
expect_out "8 judgements from the feedback database"
expect_out "rm data: 4 pairs, 0 rankings, 4 thumbs \(8 train"
expect_exit 0 "$RLHF" checkpoint inspect --model "$TMP/rm.ckpt"
expect_out "reward"
# the annotator's groups come along: only alice is in group red
expect_exit 0 "$RLHF" rm --db "$DB" --group group=red --out "$TMP/rm_red.ckpt" $S
expect_out "rm data: 3 pairs, 0 rankings, 3 thumbs \(6 train"
expect_out "2 records outside --group"
expect_exit 0 "$RLHF" dpo --db "$DB" --out "$TMP/dpo.ckpt" $S
expect_out "dpo data: 4 train / 0 held-out pairs"
expect_exit 0 "$RLHF" kto --db "$DB" --out "$TMP/kto.ckpt" $S
expect_out "kto data: 12 train / 0 held-out thumbs"
expect_exit 0 "$RLHF" sft --db "$DB" --winners --out "$TMP/sft.ckpt" $S
expect_out "7 train / 0 val demonstrations"
# align mixture reads the same judgements (2 annotators with pairs: K = 2 gives one each)
expect_exit 0 "$RLHF" align mixture --db "$DB" --k 2 --seeds 2 --restarts 1 --out "$TMP/clusters.csv"
expect_out "4 comparisons, 2 annotators"
expect_true "one annotator per cluster" [ "$(tail -n +2 "$TMP/clusters.csv" | cut -d, -f2 | sort | tr '\n' ' ')" = "0 1 " ]
expect_true "the database is unchanged (opened read-only)" [ "$(sha256sum "$DB" | cut -d' ' -f1)" = "$SUM" ]

# ---- wrong input ----
expect_exit 1 "$RLHF" rm --db "$TMP/missing.db" --out "$TMP/x.ckpt" $S
expect_out "cannot open database .*missing.db"
expect_true "a missing --db is not created" [ ! -e "$TMP/missing.db" ]
expect_exit 1 "$RLHF" dpo --db "$TMP/text.txt" --out "$TMP/x.ckpt" $S
expect_out "not a SQLite database"
sqlite3 "$TMP/other.db" "CREATE TABLE t(x)"
expect_exit 1 "$RLHF" kto --db "$TMP/other.db" --out "$TMP/x.ckpt" $S
expect_out "not an rlhf feedback database"
sqlite3 "$TMP/empty.db" "VACUUM"
expect_exit 1 "$RLHF" sft --db "$TMP/empty.db" --out "$TMP/x.ckpt" $S
expect_out "not an rlhf feedback database"
expect_true "no checkpoint written on failure" [ ! -e "$TMP/x.ckpt" ]
expect_exit 2 "$RLHF" rm --db "$DB" --records "$TMP/text.txt" --out "$TMP/x.ckpt" $S
expect_out "not both"
expect_exit 2 "$RLHF" dpo --out "$TMP/x.ckpt" $S
expect_out "give --records FILE or --db feedback.db"
expect_exit 2 "$RLHF" sft --db "$DB" --data "$TMP/text.txt" --out "$TMP/x.ckpt" $S
finish
