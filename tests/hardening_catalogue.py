"""The hardening catalogue (issue #6): every bad input or fault, what the user sees, and the test showing it.

The table in ``docs/troubleshooting.md`` (linked from the README) is generated from this list;
``tests/test_troubleshooting_catalogue.py`` checks that the table is current, that every named test exists, and
that every hardening test (marked ``@pytest.mark.hardening``) is listed. Regenerate the table after adding a row:
``python -m tests.hardening_catalogue --write-docs``
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

R = "tests/test_bad_input.py::"  # readers refusing bad files
V = "tests/test_readers.py::"  # readers opening odd-but-valid files
A = "tests/test_api.py::"
SIGNAL = "tests/test_cli_interruptions.py::test_real_signal_leaves_complete_outputs_only[{}]"
REFUSED_R = R + "test_refused_with_one_line[{}]"
REFUSED_A = A + "test_segment_refuses_with_one_line[{}]"
BAD_CASE = "tests/test_cli_errors.py::test_bad_case_is_one_error_line[{}]"
WEIGHTS = "tests/test_weights.py::test_bad_weights_refused_never_executed[{}]"

# (where, input or fault, what the user sees, test)
# where: reader = opening in napari (File > Open / drag and drop), api = napari_brainseg.segment & co,
# cli = napari-brainseg predict, widget = the dock widget, weights = every path that loads a model.
CATALOGUE: list[tuple[str, str, str, str]] = [
    # ---- files and folders (reader; the CLI and read_case give the same message)
    ("reader", "truncated `.nii.gz` (real BraTS header)", "`<file>: the file is truncated or not a valid NIfTI (...)`; no layer added", "tests/test_bad_input.py::test_truncated_nifti"),
    ("reader", "truncated `.nii`", "`<file>: the file is truncated (the header declares N bytes, the file has M)`", REFUSED_R.format("truncated-nii")),
    ("reader", "corrupt `.nii.gz` (damaged compressed data)", "`<file>: ... not a valid NIfTI (...)`", REFUSED_R.format("corrupt-nii-gz")),
    ("reader", "text file named `.nii.gz`", "`<file>: cannot read as NIfTI (... is not a gzip file)`", REFUSED_R.format("text-named-nii-gz")),
    ("reader", "text file named `.nii`", "`<file>: cannot read as NIfTI (...)`", REFUSED_R.format("text-named-nii")),
    ("reader", "zero-size `.nii.gz`; empty folder", "`<file>: the file is empty`; `<folder>: the folder is empty`", "tests/test_bad_input.py::test_empty_file_and_empty_folder"),
    ("reader", "zero-size `.tif`", "`<file>: the file is empty`", REFUSED_R.format("zero-size-tif")),
    ("reader", "text file named `.tif`", "`<file>: not a readable TIFF image (...)`", "tests/test_bad_input.py::test_tif_that_is_not_an_image"),
    ("reader", "truncated `.tif`", "`<file>: not a readable TIFF image (...)`", REFUSED_R.format("truncated-tif")),
    ("reader", "header declaring 512x512x400 in a small `.nii`", "`<file>: the file is truncated (...)`, before any buffer is allocated", REFUSED_R.format("header-declares-huge-volume")),
    ("reader", "header declaring 512x512x400 in a small `.nii.gz`", "`<file>: the header declares a (512, 512, 400) volume that this N-byte file cannot hold`", REFUSED_R.format("header-declares-huge-volume-gz")),
    ("reader", "complex-valued voxels", "`<file>: unsupported voxel type complex64`", REFUSED_R.format("complex-voxels")),
    ("reader", "volume with a zero-length axis", "`<file>: the volume is empty (shape ...)`", REFUSED_R.format("empty-volume")),
    ("reader", "NaN/Inf voxels", "opens; contrast limits from the finite voxels", V + "test_nan_inf_voxels_open_with_finite_contrast"),
    ("reader", "constant (all-zero) image named as a modality", "opens as an image (not as labels), contrast 0..1", V + "test_all_zero_image_opens"),
    ("reader", "modalities on different grids (shapes, voxel sizes, affines)", "resampled onto the FLAIR grid by world coordinates; one warning per file says so (`--register` co-registers them first)", "tests/test_bad_input.py::test_modalities_on_another_grid_are_resampled"),
    ("reader", "DICOM exam where a sequence is not recognised, or `--series` names no series", "`no T2 series recognised among <series>; name it with --series t2=...`; `--series flair=SE009: no series match; the exam holds <series>`", "tests/test_dicom.py::test_series_recognised_from_descriptions_and_overridden"),
    ("reader", "background not exactly 0 (offset, noise)", "segmented; the brain found from intensity statistics; a note says so", "tests/test_real_scans.py::test_variant_segments_like_the_original"),
    ("reader", "3 of 4 modalities", "the three open; warning `<case>: missing modality t2 (t2)`", "tests/test_readers.py::test_missing_modality_opens_the_rest_and_warns"),
    ("reader", "only a segmentation in a case folder", "`<folder>: only a segmentation, no image modality`", "tests/test_bad_input.py::test_only_a_segmentation"),
    ("reader", "duplicate modality (`_flair.nii.gz` and `_flair.nii`)", "`<folder>: two files for the flair modality (...)`", REFUSED_R.format("duplicate-modality")),
    ("reader", "files of two cases in one folder", "`<folder>: files of several cases in one folder (...)`", REFUSED_R.format("two-cases-in-one-folder")),
    ("reader", "2018 and 2023 names mixed in one case", "`<folder>: mixes 2018 (_flair) and 2023 (-t2f) file names`", REFUSED_R.format("mixed-2018-2023-names")),
    ("reader", "unknown file names in a case folder", "ignored; the case opens", "tests/test_readers.py::test_copy_with_unrelated_files_still_reads"),
    ("reader", "macOS `._*` AppleDouble files, `.DS_Store` and other hidden files in a BraTS or LGG folder", "ignored; the case opens and segments (they used to give `two files for the flair modality` / `slices of several patients`)", "tests/test_cli_outputs.py::test_hidden_files_are_ignored"),
    ("reader", "a second segmentation file (`<case>_seg.nii` beside `<case>_seg.nii.gz`, as an unzipping tool leaves it)", "the case opens and segments; warning `<case>: two segmentation files; <case>_seg.nii.gz is the ground truth (for the Dice), <case>_seg.nii is ignored` (CLI: a `note:`)", "tests/test_cli_outputs.py::test_second_segmentation_file_is_noted_not_fatal"),
    ("reader", "non-integer labels in a case's segmentation", "`<seg file>: segmentation holds non-integer values`", REFUSED_R.format("seg-non-integer-in-case")),
    ("reader", "negative labels in a case's segmentation", "`<seg file>: segmentation labels outside 0..255 (-1..0)`", REFUSED_R.format("seg-negative-in-case")),
    ("reader", "segmentation on another grid than the images", "`<seg file>: segmentation shape (...) differs from the images' (...)`", REFUSED_R.format("seg-wrong-shape-in-case")),
    ("reader", "fractional values in a single `*_seg.nii.gz`", "opens as an image, warning `... holds non-integer values; opened as an image`", V + "test_fractional_seg_file_opens_as_image_with_warning"),
    ("reader", "LGG slice with 1 channel (grey)", "`<file>: expected a 3-channel slice (...), found shape (256, 256)`", "tests/test_bad_input.py::test_tif_with_the_wrong_shape"),
    ("reader", "LGG slice with 2 channels", "`<file>: expected a 3-channel slice (...), found shape (32, 32, 2)`", REFUSED_R.format("lgg-2-channels")),
    ("reader", "LGG RGBA slice (4 channels)", "`<file>: expected a 3-channel slice (...), found shape (32, 32, 4)`", REFUSED_R.format("lgg-rgba-slice")),
    ("reader", "16-bit LGG TIFF", "`<file>: expected 8-bit channels as in kaggle_3m, found uint16`", REFUSED_R.format("lgg-16bit-tif")),
    ("reader", "float LGG TIFF", "`<file>: expected 8-bit channels as in kaggle_3m, found float32`", REFUSED_R.format("lgg-float-tif")),
    ("reader", "multi-page TIFF named like a slice", "`<file>: the TIFF holds 4 pages; kaggle_3m stores one slice per file`", REFUSED_R.format("lgg-multipage-tif")),
    ("reader", "LGG mask of another size than its slice", "`<mask>: mask shape (16, 16) differs from the slice's (32, 32)`", REFUSED_R.format("lgg-mask-size-mismatch")),
    ("reader", "anisotropic, oblique affine", "opens with z/y/x scale; labels saved back with the identical affine, sform/qform and zooms", V + "test_anisotropic_oblique_round_trip_is_exact"),
    ("reader", "paths with spaces and non-ASCII characters", "open normally", V + "test_paths_with_spaces_and_non_ascii"),
    ("reader", "a bad file dropped on the viewer", "one reader error; no layer added, viewer usable", "tests/test_viewer.py::test_bad_input_adds_no_layers"),
    ("reader", "fuzz: random bytes of a real NIfTI header overwritten, file cut at random (60 cases)", "valid data or one `BrainsegInputError` line, never another exception", R + "test_fuzz_nifti_header"),
    ("reader", "fuzz: random bytes of a TIFF overwritten, file cut at random (60 cases)", "valid (H, W, 3) uint8 or one `BrainsegInputError` line", R + "test_fuzz_tiff_bytes"),
    # ---- arrays into the models (Python API; the widget and the CLI call the same code)
    ("api", "(Z, H, W) single-channel stack into lgg-unet2d", "`model lgg-unet2d needs 3-channel slices (...); got shape (8, 64, 64) (1 channel)`", REFUSED_A.format("zhw-single-channel-into-2d-model")),
    ("api", "(H, W, 1) slice into lgg-unet2d", "`... got shape (64, 64, 1) (1 channel)`", REFUSED_A.format("lgg-1-channel")),
    ("api", "(H, W, 2) slice into lgg-unet2d", "`... got shape (64, 64, 2) (2 channels)`", REFUSED_A.format("lgg-2-channels")),
    ("api", "(H, W, 4) RGBA slice into lgg-unet2d", "`... got shape (64, 64, 4) (4 channels)`", REFUSED_A.format("lgg-4-channels-rgba")),
    ("api", "2D image into brats-unet3d", "`model brats-unet3d needs a (4, z, y, x) stack (...), got shape (64, 64)`", REFUSED_A.format("2d-image-into-3d-model")),
    ("api", "3 channel arrays into brats-unet3d", "`model brats-unet3d needs 4 channels (flair, t1, t1ce, t2), got 3`", REFUSED_A.format("3-channel-list-into-3d-model")),
    ("api", "array of strings", "`the image must be a numeric array, got dtype <U1`", REFUSED_A.format("non-numeric-array")),
    ("api", "empty array", "`the image is empty (shape ...)`", REFUSED_A.format("empty-array")),
    ("api", "huge volume (4 x 400 x 512 x 512)", "`the image is too large to segment: 400 x 512 x 512 = 104,857,600 voxels, more than the limit of 33,554,432 (...)`, before any allocation", REFUSED_A.format("huge-volume")),
    ("api", "huge volume as 4 channel arrays", "same message, before the channels are stacked", REFUSED_A.format("huge-volume-as-channel-list")),
    ("api", "huge volume as a modality dict", "same message, before the channels are stacked", REFUSED_A.format("huge-volume-as-modality-dict")),
    ("api", "huge LGG stack (2000 x 512 x 512 x 3)", "same message", REFUSED_A.format("huge-lgg-stack")),
    ("api", "`BRAINSEG_MAX_VOXELS` set low / to a non-number", "the limit applies and is named; `BRAINSEG_MAX_VOXELS='lots' is not a whole number of voxels`", A + "test_max_voxels_is_configurable"),
    ("api", "huge case on disk (headers say 512x512x400)", "`read_case`: `<file> is too large to segment: 512 x 512 x 400 ...`, from the headers alone", A + "test_huge_case_on_disk_refused_from_its_header"),
    ("api", "3 of 4 modalities", "`<folder>: missing modality t2 (t2)`", A + "test_three_of_four_modalities"),
    ("api", "modality arrays of different shapes", "`the input channels have different shapes (...)`", A + "test_bad_inputs_give_one_line_errors"),
    ("api", "NaN voxels in an LGG slice", "segments; NaN is background; message `the image holds NaN/Inf voxels ...`", A + "test_nan_voxels_are_background"),
    ("api", "NaN/Inf/1e38 voxels in a volume", "segments; message `the image holds NaN/Inf voxels; they were treated as background`", A + "test_inf_voxels_in_a_volume_are_background"),
    ("api", "constant (all-zero) image", "empty labels; message `the image is constant (no contrast) ...`", A + "test_all_zero_image_gives_empty_labels_and_says_so"),
    ("api", "3D (Z, H, W, 3) stack or three (Z, H, W) arrays into lgg-unet2d", "valid: segmented slice by slice, both forms identical", A + "test_3d_stack_into_2d_model_is_slice_wise"),
    ("api", "volume smaller than the sliding-window patch (128^3)", "segments (padded); labels on the input grid", A + "test_tiny_volume_smaller_than_the_patch"),
    ("api", "5 x 7 pixel slice", "segments; labels 5 x 7", A + "test_tiny_slice"),
    ("api", "anisotropic, oblique case", "segments; written file has the source affine bit for bit, same zooms and shape", A + "test_anisotropic_oblique_case_segments_and_writes_its_geometry"),
    ("api", "paths with spaces and non-ASCII characters", "read, segmented and written normally", A + "test_paths_with_spaces_and_non_ascii"),
    ("api", "fractional labels to the writer", "`<file>: labels must be integers, got fractional float64 values`; nothing written", A + "test_fractional_labels_refused_by_writer"),
    ("api", "negative labels to the writer", "written as signed int16, values kept", A + "test_negative_labels_written_as_signed_integers"),
    ("api", "read-only output folder", "`<folder>: the output folder is not writable; choose another one`; nothing written", A + "test_read_only_output_folder"),
    ("api", "`write_result` into a path that is a file", "`<path>: the output path is a file, not a folder`; a missing folder is created, as by the CLI", "tests/test_readme_examples.py::test_write_result_refuses_a_file_as_output_folder"),
    ("api", "CUDA out of memory", "retried with batch size 1, then on the CPU; each fallback is a message on the result", A + "test_cuda_oom_retries_smaller_then_cpu"),
    ("training", "resuming a checkpoint with another config (e.g. a quick config on the real run)", "`error: <checkpoint> was written with another configuration than <config>; ...`; checkpoint untouched", "tests/test_training.py::test_resume_refuses_a_checkpoint_of_another_config"),
    # ---- model weights
    ("weights", "weights file missing", "`model lgg-unet2d: weights file ... is missing; reinstall the package`", WEIGHTS.format("weights-missing")),
    ("weights", "weights file truncated", "`model lgg-unet2d: weights file lgg-unet2d.pt does not match its model card (sha256 ...)`", WEIGHTS.format("weights-truncated")),
    ("weights", "weights file altered by one bit", "same sha256 mismatch message", WEIGHTS.format("weights-altered-sha256-mismatch")),
    ("weights", "pickle with code (card sha256 forged to match)", "`model lgg-unet2d: cannot load lgg-unet2d.pt (UnpicklingError)`; the code never runs", WEIGHTS.format("weights-pickle-with-code")),
    ("weights", "torch checkpoint with code (card sha256 forged to match)", "same; the code never runs", WEIGHTS.format("weights-torch-checkpoint-with-code")),
    ("weights", "checkpoint with code, card untouched", "sha256 mismatch; never unpickled", WEIGHTS.format("weights-pickle-with-code-unverified")),
    ("weights", "weights of another network", "`model lgg-unet2d: lgg-unet2d.pt does not fit the ... network (...)`", WEIGHTS.format("weights-wrong-architecture")),
    ("weights", "checkpoint that is not a state dict", "`model lgg-unet2d: lgg-unet2d.pt is not a state dict of tensors ...`", WEIGHTS.format("weights-not-a-state-dict")),
    ("weights", "model card missing", "`model lgg-unet2d: no model card at ...`", WEIGHTS.format("model-card-missing")),
    ("weights", "model card corrupt JSON", "`model lgg-unet2d: the model card lgg-unet2d.json is unreadable (JSONDecodeError) ...`", WEIGHTS.format("model-card-corrupt")),
    # ---- the CLI
    ("cli", "corrupt case in a cohort", "`error: <case>: ... truncated ...`; the other cases are written; exit 1", "tests/test_cli_errors.py::test_cohort_with_a_broken_case"),
    ("cli", "input that does not exist / holds no case", "`error: <name>: no such file or folder` / `not a BraTS case folder or LGG patient folder`; exit 1", "tests/test_cli_errors.py::test_missing_and_unrecognised_inputs"),
    ("cli", "3 of 4 modalities", "`error: <case>: <folder>: missing modality t2 (t2)`; exit 1; nothing written", BAD_CASE.format("cli-three-of-four-modalities")),
    ("cli", "duplicate modality", "`error: <case>: ... two files for the flair modality ...`; exit 1", BAD_CASE.format("cli-duplicate-modality")),
    ("cli", "huge case (512x512x400)", "`error: <case>: <file> is too large to segment ...` before reading the voxels; exit 1", BAD_CASE.format("cli-huge-case")),
    ("cli", "RGBA slice in an LGG patient", "`error: <patient>: <file>: expected a 3-channel slice ...`; exit 1", BAD_CASE.format("cli-rgba-slices")),
    ("cli", "zero-size file in a case", "`error: <case>: <file>: the file is empty`; exit 1", BAD_CASE.format("cli-zero-size-file")),
    ("cli", "unexpected error with a multi-line message", "`error: <case>: <first line>`, no traceback; exit 1", "tests/test_cli_errors.py::test_unexpected_exception_is_one_line"),
    ("cli", "weights file missing", "`error: <case>: model ...: weights file ... is missing ...`; exit 1", "tests/test_cli_errors.py::test_weights_missing"),
    ("cli", "read-only output folder", "`error: <case>: <folder>: the output folder is not writable ...`; exit 1; nothing written", "tests/test_cli_errors.py::test_read_only_output_folder"),
    ("cli", "output folder that cannot be created", "`error: <dir>: cannot create the output folder (...)`; exit 2", "tests/test_cli_errors.py::test_output_folder_cannot_be_created"),
    ("cli", "output folder inside the input folder", "works; a rerun does not read its own outputs as cases (`--skip-existing` skips them)", "tests/test_cli_outputs.py::test_output_folder_inside_input_folder"),
    ("cli", "output folder that is (or would write into) the case folder", "`error: <case>: <dir>: would write the results into the case folder ... itself`; case files untouched", "tests/test_cli_errors.py::test_output_folder_is_the_case_folder"),
    ("cli", "paths with spaces and non-ASCII characters", "works; paths printed as given", "tests/test_cli_outputs.py::test_paths_with_spaces_and_non_ascii"),
    ("cli", "Ctrl-C mid-cohort", "`error: interrupted; outputs written so far are complete ...`; exit 130; finished cases complete, no temp files; rerun refuses, `--skip-existing` skips, `--overwrite` rewrites", "tests/test_cli_interruptions.py::test_interrupted_mid_cohort"),
    ("cli", "Ctrl-C while a file is being written", "no output and no temporary file left", "tests/test_cli_interruptions.py::test_interrupted_while_writing_leaves_no_file"),
    ("cli", "output files' mode (CLI outputs, `write_labels`, napari's save) under umask 022 and 027", "what an ordinary new file gets: 0644 / 0640, folders 0755 / 0750 (never 0600)", "tests/test_cli_outputs.py::test_outputs_get_the_ordinary_file_mode"),
    ("cli", "Ctrl-C while an LGG patient's masks are written", "no patient folder and no temporary left: the masks go into a hidden temporary folder renamed when all are written", "tests/test_cli_interruptions.py::test_lgg_masks_all_or_nothing_when_interrupted"),
    ("cli", "real SIGINT while a NIfTI is written (child process)", "`error: interrupted by SIGINT; outputs written so far are complete ...`; exit 130; outputs complete or absent, no temporary; a `--skip-existing` rerun finishes", SIGNAL.format("sigint-while-writing-a-nifti")),
    ("cli", "real SIGTERM while a NIfTI is written (e.g. a batch scheduler's time limit)", "ends like Ctrl-C: `error: interrupted by SIGTERM; ...`; exit 143; outputs complete or absent, no temporary", SIGNAL.format("sigterm-while-writing-a-nifti")),
    ("cli", "real SIGTERM while an LGG patient's masks are written", "same; no folder holding some of the masks", SIGNAL.format("sigterm-while-writing-lgg-masks")),
    ("cli", "real SIGINT between two cases", "same; the finished case complete, the next one absent", SIGNAL.format("sigint-between-cases")),
    ("cli", "real SIGKILL while a NIfTI is written", "outputs complete or absent; the temporary left is hidden (`.brainseg-<pid>-<hex>.tmp`), never named like an output; the next run into the folder removes it", SIGNAL.format("sigkill-while-writing-a-nifti")),
    ("cli", "real SIGKILL while an LGG patient's masks are written", "no patient folder; the hidden temporary folder is removed by the next run", SIGNAL.format("sigkill-while-writing-lgg-masks")),
    ("cli", "temporaries of a killed run beside those of a run still writing", "the dead process's are removed, the live one's kept", "tests/test_cli_interruptions.py::test_stale_temporaries_of_dead_runs_are_removed_live_ones_kept"),
    ("cli", "two runs writing the same case ids into one folder at once (no `--overwrite`)", "each output is claimed atomically: exactly one run writes it, the other says `error: <case>: <file>: already exists (written by another run meanwhile?); not overwriting`; exit 1", "tests/test_cli_interruptions.py::test_two_runs_one_output_exactly_one_wins"),
    ("cli", "disk full (a 2 MiB tmpfs)", "`error: <case>: <path>: cannot write (No space left on device)`; exit 1; no partial file, no folder of some masks, no temporary", "tests/test_cli_errors.py::test_disk_full_leaves_no_partial_output"),
    ("cli", "case id too long for the file system's 255-byte names", "230 bytes: written (temporary names are short); 246 bytes (`<id>_1_mask.tif` would be 257): `error: <case>: <name>...: the output name is 257 bytes, more than the 255 the file system allows; rename the case`, before the model runs", "tests/test_cli_outputs.py::test_long_case_id_written_or_refused_before_the_model"),
    ("cli", "`--device cuda` without a CUDA GPU", "`error: device 'cuda' was requested but no CUDA GPU is available; use 'auto' or 'cpu'` once, before any case is read; exit 2", "tests/test_cli_errors.py::test_device_cuda_without_cuda_is_checked_once_before_any_work"),
    ("cli", "stdout closed early (`napari-brainseg predict ... | head -1`)", "the run continues and writes every case; no `Broken pipe` error; exit 0", "tests/test_cli_interruptions.py::test_closed_stdout_pipe_is_not_an_error"),
    ("cli", "outputs of a case cut short (some LGG masks missing)", "`--skip-existing`: `note: <patient>: redoing N output(s) of an unfinished earlier run`", "tests/test_cli_interruptions.py::test_partial_lgg_outputs_are_redone_with_skip_existing"),
    # ---- the dock widget
    ("widget", "missing modality layers, 2D layers into the 3D model, layers of different shapes", "one notification each; nothing runs, nothing added", "tests/test_widget_inputs.py::test_wrong_inputs_notify_and_add_nothing"),
    ("widget", "device cuda without a GPU", "one notification `device 'cuda' was requested but no CUDA GPU is available ...`", "tests/test_widget_lifecycle.py::test_worker_error_is_one_notification"),
    ("widget", "unexpected error in the worker", "one notification `Segmentation failed; see Status` (short enough for napari's toast); Status and the log say `Segmentation failed: RuntimeError: <first line>`; no layer added", "tests/test_widget_lifecycle.py::test_unexpected_worker_error_is_one_notification"),
    ("widget", "Cancel during a run (BraTS case)", "`Segmentation cancelled; no layer was added.`", "tests/test_widget_lifecycle.py::test_cancel_adds_no_layer"),
    ("widget", "Cancel during a run", "status `Cancelled.`; no layer added; Run enabled; no worker thread left", "tests/test_widget_lifecycle.py::test_cancel_during_run"),
    ("widget", "closing the viewer during a run", "the worker stops at its next step; no error, no thread left", "tests/test_widget_lifecycle.py::test_close_viewer_during_run"),
    ("widget", "pressing Run twice", "the second press is ignored while running; a later run adds `... [2]`, never replaces a layer", "tests/test_widget_lifecycle.py::test_run_pressed_twice"),
    ("widget", "removing the source layer during a run", "the result still arrives under the source's name; other layers untouched", "tests/test_widget_lifecycle.py::test_remove_source_layer_during_run"),
    ("widget", "huge layers (400 x 512 x 512)", "one notification `Cannot run on these layers; see Status`; Status says `layer '<name>' is too large to segment ...`; no worker started", "tests/test_widget_inputs.py::test_huge_layers_refused_before_the_worker"),
    ("widget", "RGBA layer as LGG input", "not offered as a 3-channel layer; Run notifies `Choose the input layers` and Status says `lgg-unet2d needs one 3-channel layer or three single-channel layers ...`", "tests/test_widget_inputs.py::test_rgba_layer_is_not_offered_as_three_channels"),
    ("widget", "three (Z, H, W) layers into lgg-unet2d", "valid: runs slice by slice", "tests/test_widget_runs.py::test_3d_stack_into_2d_model_runs_slice_wise"),
    ("widget", "result layer deleted while it is being added", "no error; Run enabled again", "tests/test_widget_lifecycle.py::test_result_steps_stop_when_the_layer_is_deleted"),
    ("widget", "dock closed while the result layer is being added", "the layer is still shown in the viewer", "tests/test_widget_lifecycle.py::test_result_is_shown_even_if_the_dock_closes_meanwhile"),
]

START, END = "<!-- hardening-table:start -->", "<!-- hardening-table:end -->"


def markdown_table() -> str:
    rows = ["| # | Where | Input or fault | What you see | Test |", "|---|---|---|---|---|"]
    for number, (where, what, outcome, test) in enumerate(CATALOGUE, 1):
        cells = (str(number), where, what, outcome, f"`{test}`")
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


TROUBLESHOOTING = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"


def table_block() -> str:
    return f"{START}\n{markdown_table()}\n{END}"


def update_page(page: Path = TROUBLESHOOTING) -> bool:
    text = page.read_text()
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: table_block(), text, flags=re.S)
    if new != text:
        page.write_text(new)
    return new != text


if __name__ == "__main__":
    if "--write-docs" in sys.argv:
        changed = update_page()
        print(f"{TROUBLESHOOTING.name} updated" if changed else f"{TROUBLESHOOTING.name} already current")
    else:
        print(markdown_table())
