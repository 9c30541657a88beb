"""Every benchmark in one command: a markdown table on stdout, CSV and markdown files.

    python benchmarks/run.py [--quick] [--out benchmarks/results] [--nets resnet50:128,unet]

Runs each measurement in its own process (``ours.py``, ``peers.py``,
``matmul_peak.py``, ``data_pipeline.py``), so compile caches, thread pools and
peak memory stay per framework, and one after the other, so no two compete
for the cores. Writes ``training_steps.csv``/``.md`` (throughput, ratios
ours/peer, first-step compile time, model FLOPs utilisation against the
measured matmul peak, peak memory) and ``summary.md`` (all tables) under
``--out``. ``--quick`` shortens every timing (a smoke check of the harness).
Peak memory is the device's (JAX memory stats, ``torch.cuda``) on
accelerators and the measuring process's resident set on CPU.
"""

import argparse
import csv
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import timing  # pylint: disable=wrong-import-position
from configs import finetune  # pylint: disable=wrong-import-position

# (net, input side, batch): the patch sizes researchers use; 299 for InceptionV3.
WORKLOADS = (('resnet50', 128, 16), ('resnet50', 224, 16), ('densenet121', 128, 16),
             ('mobilenet', 128, 16), ('mobilenet', 224, 16), ('inception_v3', 299, 16),
             ('unet', 256, 16))
PEERS = ('keras', 'torch')
TIMEOUT_SECONDS = 1800


def run_script(script: str, *args: str, env_extra: dict | None = None) -> list[dict]:
  """RESULT dicts of ``python benchmarks/SCRIPT ARGS``; an error result if it fails."""
  env = {**os.environ, **(env_extra or {})}
  command = [sys.executable, str(REPO / 'benchmarks' / script), *args]
  try:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, check=False)
  except subprocess.TimeoutExpired:
    return [{'error': f'timed out after {TIMEOUT_SECONDS} s: {" ".join(command[1:])}'}]
  results = timing.parse_results(done.stdout)
  if done.returncode or not results:
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return [{'error': f'{script} {" ".join(args)} exited {done.returncode}: {" | ".join(tail)}'}]
  return results


def timing_args(quick: bool) -> list[str]:
  return (['--windows', '2', '--steps-per-window', '1', '--warmup', '1'] if quick else
          ['--windows', '3', '--steps-per-window', '3', '--warmup', '1'])


def matmul_peaks(dtypes, quick: bool) -> dict:
  """{(framework, dtype): GFLOP/s} of a 2048² matmul (1024² with --quick)."""
  size = '1024' if quick else '2048'
  peaks = {}
  for dtype in dtypes:
    for framework in ('jax', 'torch'):
      result = run_script('matmul_peak.py', '--framework', framework, '--dtype', dtype,
                          '--size', size)[0]
      peaks[(framework, dtype)] = result.get('gflops', float('nan'))
  return peaks


def training_rows(workloads, dtypes, peaks: dict, quick: bool) -> list[dict]:
  """One row per workload × dtype: each framework's throughput, ratios, MFU, memory."""
  rows = []
  for net, size, batch in workloads:
    for dtype in dtypes:
      common = ['--net', net, '--size', str(size), '--batch', str(batch), '--dtype', dtype,
                *timing_args(quick)]
      ours = run_script('ours.py', '--measure', 'step', *common)[0]
      peers = {f: run_script('peers.py', '--framework', f, *common)[0] for f in PEERS}
      if dtype == 'float32':  # PyTorch's other CPU memory format: keep the faster
        channels_last = run_script('peers.py', '--framework', 'torch', '--channels-last',
                                   *common)[0]
        if channels_last.get('images_per_second', 0) > peers['torch'].get(
            'images_per_second', 0):
          peers['torch'] = channels_last
      rows.append(training_row(net, size, batch, dtype, ours, peers, peaks))
      print(json.dumps(rows[-1]), flush=True)
  return rows


def training_row(net, size, batch, dtype, ours: dict, peers: dict, peaks: dict) -> dict:
  peak = max(peaks.get((f, dtype), 0.0) for f in ('jax', 'torch')) * 1e9
  flops = ours.get('flops_per_image', float('nan'))
  row = {'net': net, 'size': size, 'batch': batch, 'dtype': dtype,
         'gflop_per_image': flops / 1e9}
  for name, result in (('mammojax', ours), *peers.items()):
    rate = result.get('images_per_second', float('nan'))
    row[f'{name}_img_s'] = rate
    row[f'{name}_first_step_s'] = result.get('first_step_seconds', float('nan'))
    row[f'{name}_mfu'] = flops * rate / peak if peak else float('nan')
    # Device memory where the backend reports it (GPU/TPU), else the process's RSS.
    row[f'{name}_peak_mb'] = (result.get('device_peak_mb')
                              or result.get('peak_rss_mb', float('nan')))
    if 'error' in result:
      row[f'{name}_error'] = result['error']
  for name in peers:
    row[f'ours_over_{name}'] = row['mammojax_img_s'] / row[f'{name}_img_s']
  row['torch_channels_last'] = peers['torch'].get('channels_last', False)
  return row


def training_table(rows: list[dict]) -> str:
  lines = ['| net | size | batch | dtype | mammojax img/s | Keras-JAX img/s | PyTorch img/s | '
           'ours/Keras | ours/PyTorch | first step s (ours / Keras / PyTorch) | MFU ours | '
           'peak memory MiB (ours / Keras / PyTorch) |', '|' + '---|' * 12]
  for r in rows:
    lines.append(
        f'| {r["net"]} | {r["size"]} | {r["batch"]} | {r["dtype"]} | '
        f'{r["mammojax_img_s"]:.1f} | {r["keras_img_s"]:.1f} | {r["torch_img_s"]:.1f}'
        f'{" (channels-last)" if r["torch_channels_last"] else ""} | '
        f'{r["ours_over_keras"]:.2f} | {r["ours_over_torch"]:.2f} | '
        f'{r["mammojax_first_step_s"]:.1f} / {r["keras_first_step_s"]:.1f} / '
        f'{r["torch_first_step_s"]:.1f} | {100 * r["mammojax_mfu"]:.0f}% | '
        f'{r["mammojax_peak_mb"]:.0f} / {r["keras_peak_mb"]:.0f} / '
        f'{r["torch_peak_mb"]:.0f} |')
  errors = [v for r in rows for k, v in r.items() if k.endswith('_error')]
  return '\n'.join(lines + [f'\nFailed: {e}' for e in errors])


def checkpoint_table(epoch_images: int, quick: bool) -> tuple[str, list[dict]]:
  """Async save time of the main job's and ResNet50's state, as a share of an epoch.

  Runs save ``latest`` after an epoch only while saves have blocked at most
  ``train.checkpoint_share`` of the time, so with short epochs every k-th epoch
  is saved: the table gives k and the share that results.
  """
  share = finetune.get_config().train.checkpoint_share
  rows = []
  for net, size, batch in (('small_cnn', 64, 32), ('resnet50', 128, 16)):
    common = ['--net', net, '--size', str(size), '--batch', str(batch), *timing_args(quick)]
    step = run_script('ours.py', '--measure', 'step', *common)[0]
    saved = run_script('ours.py', '--measure', 'checkpoint', *common)[0]
    epoch_seconds = epoch_images / step.get('images_per_second', float('nan'))
    blocked = saved.get('save_blocked_seconds', float('nan'))
    every = max(1, math.ceil(blocked / (share * epoch_seconds))) if blocked == blocked else 1
    rows.append({'net': net, 'size': size, 'batch': batch, 'epoch_images': epoch_images,
                 'epoch_seconds': epoch_seconds, 'saved_every_epochs': every,
                 'blocked_share': blocked / (every * epoch_seconds),
                 **{k: saved.get(k, float('nan')) for k in (
                     'checkpoint_mb', 'save_blocked_seconds', 'save_written_seconds')}})
  lines = ['| state of | checkpoint MiB | epoch s | training blocked per save s '
           '(share of one epoch) | written in background s | saved every k epochs '
           f'(checkpoint_share={share}) | blocked share of training |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f'| {r["net"]} {r["size"]}px batch {r["batch"]} | {r["checkpoint_mb"]:.1f} | '
                 f'{r["epoch_seconds"]:.1f} | {r["save_blocked_seconds"]:.3f} '
                 f'({100 * r["save_blocked_seconds"] / r["epoch_seconds"]:.2f}%) | '
                 f'{r["save_written_seconds"]:.2f} | {r["saved_every_epochs"]} | '
                 f'{100 * r["blocked_share"]:.2f}% |')
  return '\n'.join(lines), rows


def write_csv(path: pathlib.Path, rows: list[dict]) -> None:
  fields = sorted({k for r in rows for k in r})
  with open(path, 'w', newline='') as file:
    writer = csv.DictWriter(file, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
  parser.add_argument('--quick', action='store_true', help='short timings: checks the harness')
  parser.add_argument('--out', default=str(REPO / 'benchmarks' / 'results'))
  parser.add_argument('--nets', default='',
                      help="a subset of the workloads: 'resnet50,unet' or 'resnet50:128'")
  parser.add_argument('--dtypes', default='float32',
                      help="'float32,bfloat16' on accelerators (and CPUs with bf16 units)")
  parser.add_argument('--epoch-images', type=int, default=0,
                      help="images per epoch for the checkpoint share; 0 = the main job's")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  dtypes = args.dtypes.split(',')
  chosen = set(args.nets.split(',')) if args.nets else None
  workloads = [w for w in WORKLOADS
               if chosen is None or w[0] in chosen or f'{w[0]}:{w[1]}' in chosen]
  start = time.perf_counter()
  peaks = matmul_peaks(dtypes, args.quick)
  rows = training_rows(workloads, dtypes, peaks, args.quick)
  write_csv(out / 'training_steps.csv', rows)
  steps_md = training_table(rows)
  (out / 'training_steps.md').write_text(steps_md + '\n')
  pipeline = run_script('data_pipeline.py', '--out', str(out))[0]
  epoch_images = args.epoch_images or pipeline.get('train_patches', 0)
  checkpoint_md, checkpoint_rows = checkpoint_table(epoch_images, args.quick)
  write_csv(out / 'checkpoints.csv', checkpoint_rows)
  sliding = run_script('ours.py', '--measure', 'sliding_window', *timing_args(args.quick))[0]
  peak_lines = ', '.join(f'{f} {d} {g:.0f} GFLOP/s' for (f, d), g in peaks.items())
  summary = '\n\n'.join([
      f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; '
      f'measured {time.strftime("%Y-%m-%d")} in {(time.perf_counter() - start) / 60:.0f} min.',
      f'Matmul peak (2048², median): {peak_lines}.', '## Training step', steps_md,
      '## Data pipeline', (out / 'data_pipeline.md').read_text().strip(),
      '## Checkpoint saving', checkpoint_md, '## Sliding-window inference',
      f'One 1152×896 mammogram through {sliding.get("window")}-pixel windows every '
      f'{sliding.get("stride")} pixels (segmentation config U-Net): '
      f'{sliding.get("seconds_per_image", float("nan")):.2f} s per image '
      f'(first image {sliding.get("first_image_seconds", float("nan")):.1f} s with '
      f'compilation), peak RSS {sliding.get("peak_rss_mb", float("nan")):.0f} MiB.'])
  (out / 'summary.md').write_text(summary + '\n')
  print(summary)


if __name__ == '__main__':
  main()
