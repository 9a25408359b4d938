"""Published figures of the reference systems, each with its source and what exactly it measures.

Typed here once, from the sources named; the reports print them next to our numbers with the caveats,
because none of them was measured on our validation split (different cases, splits and rules).
"""

from __future__ import annotations

LGG_REFERENCES = [
    {
        "system": "Buda et al. 2019 (U-Net, paper)",
        "dice": 0.82,
        "dice_median": 0.85,
        "source": "Buda, Saha, Mazurowski, Computers in Biology and Medicine 109 (2019), "
                  "doi:10.1016/j.compbiomed.2019.05.002 (arXiv:1906.03720), abstract/results",
        "metric": "Dice per patient volume (FLAIR abnormality), mean (and median) over all 110 TCGA LGG patients, "
                  "each predicted by the cross-validation fold that did not train on it, with the authors' "
                  "pre- and post-processing",
        "comparable": "different cases (all 110 patients vs our 18 validation patients) and protocol "
                      "(cross-validation: each patient predicted by a model trained on the other folds, ~100 patients)",
    },
    {
        "system": "Buda et al. (Keras release, repository README)",
        "dice": 0.8360,
        "dice_median": 0.8733,
        "source": "github.com/MaciejMazurowski/brain-segmentation README, 'Results' (DSC distribution over the "
                  "110 cases of the study); the project's issue #5 quotes 0.836 with 22-fold cross-validation",
        "metric": "Dice per patient volume, mean (median) over the 110 patients; cross-validated predictions "
                  "(22 folds of 5 patients per the issue text; the fold count is not restated in the README)",
        "comparable": "same caveats as the paper figure",
    },
]

BRATS_REFERENCES = [
    {
        "system": "MONAI model zoo brats_mri_segmentation (SegResNet)",
        "dice": {"TC": 0.8559, "WT": 0.9026, "ET": 0.7905},
        "dice_mean": 0.8518,
        "hd95": None,
        "source": "github.com/Project-MONAI/model-zoo models/brats_mri_segmentation/docs/README.md 'Performance' "
                  "and configs/metadata.json eval_metrics (bundle v0.3.x)",
        "metric": "MONAI MeanDice (include_background=True; MONAI's default ignore_empty=True, so a case with an "
                  "empty ground-truth region is left out of that region's mean) on the bundle's own 42-case "
                  "validation split of the 285 BraTS 2018 training cases (200 train / 42 val / 43 test); sigmoid "
                  "> 0.5, sliding window 240x240x160, overlap 0.5, sw_batch_size 1, AMP, no TTA",
        "comparable": "same data set (BraTS 2018 training cases) but a different validation split, 7x more "
                      "validation cases and 200 training cases (ours: 26); no HD95 published",
    },
    {
        "system": "nnU-Net, Isensee et al. BraTS 2020 (winning ensemble)",
        "dice": {"TC": 0.8506, "WT": 0.8895, "ET": 0.8203},
        "dice_mean": round((0.8506 + 0.8895 + 0.8203) / 3, 4),
        "hd95": {"TC": 17.337, "WT": 8.498, "ET": 17.805},
        "source": "Isensee, Jaeger, Full, Vollmuth, Maier-Hein, 'nnU-Net for Brain Tumor Segmentation', "
                  "BrainLes 2020 (arXiv:2011.00848), abstract",
        "metric": "BraTS 2020 challenge TEST set (166 cases, evaluated by the organisers): per-case Dice and "
                  "HD95 (mm) per region, mean over cases; BraTS rule: empty truth and empty prediction -> "
                  "Dice 1 / HD95 0, exactly one empty -> Dice 0 / HD95 373.13; ensemble of several nnU-Net "
                  "variants, mirroring TTA, region-based training, ET post-processing",
        "comparable": "different data (BraTS 2020 test, 369 training cases) and a heavy ensemble; our metric "
                      "code follows the same BraTS empty-region rule (napari_brainseg.engine.metrics)",
    },
]

BUNDLE_SETTINGS = {
    "network": "monai.networks.nets.SegResNet(blocks_down=(1,2,2,4), blocks_up=(1,1,1), init_filters=16, "
               "in_channels=4, out_channels=3, dropout_prob=0.2)",
    "preprocessing": "NormalizeIntensity(nonzero=True, channel_wise=True) on the full volume (no crop)",
    "inferer": "SlidingWindowInferer(roi_size=(240,240,160), sw_batch_size=1, overlap=0.5) (mode constant)",
    "postprocessing": "sigmoid, threshold 0.5, nested regions -> labels 1/2/4, SaveImage uint8",
    "amp": "true in the bundle (CUDA autocast); on the CPU the bundle runs fp32",
    "source": "github.com/Project-MONAI/model-zoo models/brats_mri_segmentation/configs/inference.json",
}
