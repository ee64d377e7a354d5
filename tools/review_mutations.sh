#!/usr/bin/env bash
# The changes a review made by hand to the code (issue 15), each applied to a copy of the
# tree: the tests named beside it must fail on it. Run by hand, like tools/mutation.sh, after
# changing those tests (about a minute):   bash tools/review_mutations.sh
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python}
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
failed=0
mutate() {  # NAME FILE OLD NEW TESTS...: FILE with OLD replaced by NEW; TESTS must fail
  local name=$1 file=$2 old=$3 new=$4; shift 4
  rm -rf "$copy/tree"; mkdir -p "$copy/tree"
  (cd "$src" && git ls-files -z | xargs -0 cp --parents -t "$copy/tree")
  "$py" - "$copy/tree/$file" "$old" "$new" <<'PY'
import sys; from pathlib import Path
path, old, new = sys.argv[1:]; p = Path(path); s = p.read_text()
assert s.count(old) == 1, f"{path}: the code to change is not there once: {old!r}"
p.write_text(s.replace(old, new))
PY
  # the copy's own conftest puts the copy first on sys.path: it tests itself
  (cd "$copy/tree" && "$py" -m pytest -q -x -p no:cacheprovider "$@" > "$copy/$name.log" 2>&1)
  local rc=$?
  if [ $rc -eq 1 ]; then
    echo "detected  $name: $(grep -m1 '^FAILED' "$copy/$name.log" | cut -c8-)"
  else
    echo "MISSED    $name: pytest exit $rc ($(tail -1 "$copy/$name.log"))"; failed=1
  fi
}
mutate loss_div7 scripts/p23_train.py "return total_test_loss, total_accuracy / test_data_size, confusion" \
  "return total_test_loss / 7, total_accuracy / test_data_size, confusion" tests/test_p23_train.py tests/test_tensorboard_pictures.py
mutate acc_denominator scripts/p23_train.py "return total_test_loss, total_accuracy / test_data_size, confusion" \
  "return total_test_loss, total_accuracy / (len(test_dataloader) * test_dataloader.batch_size), confusion" tests/test_p23_train.py tests/test_tensorboard_pictures.py
mutate drop_last_batch scripts/p23_train.py "            total_test_loss = total_test_loss + loss
" "            total_test_loss = total_test_loss + (loss if len(targets) == test_dataloader.batch_size else 0)
" tests/test_p23_train.py tests/test_tensorboard_pictures.py
mutate shuffle_cached common/data.py "            order = torch.randperm(len(self.targets), generator=self.generator)
" "            self._order = getattr(self, '_order', None)
            if self._order is None:
                self._order = torch.randperm(len(self.targets), generator=self.generator)
            order = self._order
" tests/test_common_data.py
mutate p24_acc_denominator scripts/p24_train_gpu.py 'print("整体测试集上的正确率: {}".format(total_accuracy / test_data_size))' \
  'print("整体测试集上的正确率: {}".format(total_accuracy / (len(test_dataloader) * args.batch_size)))' tests/test_p24_train_gpu.py
mutate p24_loss_div7 scripts/p24_train_gpu.py "    return total_test_loss, total_accuracy
" "    return total_test_loss / 7, total_accuracy
" tests/test_p24_train_gpu.py
mutate p24_cumulative_epoch_time scripts/p24_train_gpu.py "            epoch_start = time.time()
" "            epoch_start = start_time
" tests/test_p24_train_gpu.py
mutate p19_wrong_mse scripts/p19_loss.py "    loss_mse = MSELoss()" "    loss_mse = L1Loss()" tests/test_p19_loss.py
exit $failed
