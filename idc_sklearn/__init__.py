"""idc_sklearn: the MLBN Inception network for IDC patches as a sklearn estimator.

Every public name is listed in ``_PUBLIC`` with the module that defines it, so a
reader finds any of them in one hop. They are imported on first use (PEP 562), which
keeps ``import idc_sklearn.datasets`` free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from idc_sklearn._lazy import lazy_namespace

__version__ = "0.1.0"

_PUBLIC = {
    # the network (torch only)
    "MLBNBlock": "idc_sklearn.network",
    "MLBNInception": "idc_sklearn.network",
    "PRESETS": "idc_sklearn.network",
    # the estimators
    "PatchNetClassifier": "idc_sklearn.classifier",
    "MLBNInceptionClassifier": "idc_sklearn.classifier",
    "PatientValidSplit": "idc_sklearn.split",
    "PatchResampler": "idc_sklearn.resampling",
    "EpochResampler": "idc_sklearn.resampling",
    "BatchNormRecalibration": "idc_sklearn.callbacks",
    "WeightAveraging": "idc_sklearn.callbacks",
    "default_callbacks": "idc_sklearn.callbacks",
    "TrainingCheckpoint": "idc_sklearn.checkpoint",
    # data-parallel training through Accelerate (imports accelerate)
    "AcceleratedMLBNInceptionClassifier": "idc_sklearn.accelerated",
    "AcceleratePatchNetMixin": "idc_sklearn.accelerated",
    # training-time augmentation (torch only)
    "augment_batch": "idc_sklearn.augmentation",
    "dihedral": "idc_sklearn.augmentation",
    "dihedral_views": "idc_sklearn.augmentation",
    "hed_jitter": "idc_sklearn.augmentation",
    # data
    "load_idc": "idc_sklearn.datasets",
    "load_idc_sample": "idc_sklearn.datasets",
    "read_patient_split": "idc_sklearn.datasets",
    "read_patch": "idc_sklearn.datasets",
    "check_archive_layout": "idc_sklearn.datasets",
    "idc_sample_file": "idc_sklearn.datasets",
    "make_idc_patches": "idc_sklearn.datasets",
    # baselines: CNNs (torch) and handcrafted features (no torch)
    "JanowczykCNNClassifier": "idc_sklearn.cnn_baselines",
    "CruzRoaCNNClassifier": "idc_sklearn.cnn_baselines",
    "JanowczykCNN": "idc_sklearn.cnn_baselines",
    "CruzRoaCNN": "idc_sklearn.cnn_baselines",
    "ColorHistogram": "idc_sklearn.handcrafted",
    "ColorMoments": "idc_sklearn.handcrafted",
    "LBPFeatures": "idc_sklearn.handcrafted",
    "GLCMFeatures": "idc_sklearn.handcrafted",
    "HOGFeatures": "idc_sklearn.handcrafted",
    "make_baseline": "idc_sklearn.handcrafted",
    "BASELINES": "idc_sklearn.handcrafted",
    # histopathology tools: stain normalisation (no torch)
    "ReinhardNormalizer": "idc_sklearn.stain",
    "MacenkoNormalizer": "idc_sklearn.stain",
    # metrics and the comparison
    "SCORING": "idc_sklearn.metrics",
    "patient_scores": "idc_sklearn.metrics",
    "patient_predictions": "idc_sklearn.metrics",
    "paired_bootstrap": "idc_sklearn.metrics",
    "compare_models": "idc_sklearn.comparison",
    # ensembles split by patient (sklearn's stacking and voting; no torch)
    "PatientStackingClassifier": "idc_sklearn.ensemble",
    "PatientVotingClassifier": "idc_sklearn.ensemble",
    # each patient's own IDC share in the predictions (label shift; no torch)
    "PatientPriorClassifier": "idc_sklearn.prior_shift",
    "adapt_to_patients": "idc_sklearn.prior_shift",
    # each patch's neighbours on its slide in its prediction (no torch)
    "smooth_neighbours": "idc_sklearn.spatial",
    "write_html_report": "idc_sklearn.html_report",
    # figures (matplotlib; no torch)
    "plot_comparison": "idc_sklearn.plotting",
    "plot_learning_curves": "idc_sklearn.plotting",
    "plot_paired_differences": "idc_sklearn.plotting",
    "plot_patient_scores": "idc_sklearn.plotting",
    "plot_roc_curves": "idc_sklearn.plotting",
    "plot_precision_recall_curves": "idc_sklearn.plotting",
    "plot_confusion_matrix": "idc_sklearn.plotting",
    "slide_image": "idc_sklearn.plotting",
    "plot_slide_heatmap": "idc_sklearn.plotting",
    "plot_patient_heatmap": "idc_sklearn.plotting",
    "plot_slide_prediction": "idc_sklearn.plotting",
    # whole-slide inference (OpenSlide or tiffslide: the "slides" extra)
    "predict_slide": "idc_sklearn.wholeslide",
    "predict_slides": "idc_sklearn.wholeslide",
    "SlideResult": "idc_sklearn.wholeslide",
    "ARCHIVE_MPP": "idc_sklearn.wholeslide",
    "write_slide": "idc_sklearn.wholeslide",
    # the model directory of WSInfer and QuPath's WSInfer extension (TorchScript)
    "export_wsinfer": "idc_sklearn.wsinfer",
    # saved models (safetensors, no pickle)
    "save_model": "idc_sklearn.persistence",
    "load_model": "idc_sklearn.persistence",
    "FileFormatError": "idc_sklearn.persistence",
    # pretrained models shipped in the package
    "load_pretrained": "idc_sklearn.pretrained",
    "pretrained_card": "idc_sklearn.pretrained",
    "PRETRAINED": "idc_sklearn.pretrained",
    "DEFAULT_PRETRAINED": "idc_sklearn.pretrained",
}

__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:
    # The same names, imported where editors and type checkers look for them; at
    # run time __getattr__ imports each on first use. tests/test_public_api.py
    # checks that this block and _PUBLIC agree.
    from idc_sklearn.accelerated import (
        AcceleratedMLBNInceptionClassifier,
        AcceleratePatchNetMixin,
    )
    from idc_sklearn.augmentation import (
        augment_batch,
        dihedral,
        dihedral_views,
        hed_jitter,
    )
    from idc_sklearn.callbacks import (
        BatchNormRecalibration,
        WeightAveraging,
        default_callbacks,
    )
    from idc_sklearn.checkpoint import TrainingCheckpoint
    from idc_sklearn.classifier import MLBNInceptionClassifier, PatchNetClassifier
    from idc_sklearn.cnn_baselines import (
        CruzRoaCNN,
        CruzRoaCNNClassifier,
        JanowczykCNN,
        JanowczykCNNClassifier,
    )
    from idc_sklearn.comparison import compare_models
    from idc_sklearn.datasets import (
        check_archive_layout,
        idc_sample_file,
        load_idc,
        load_idc_sample,
        make_idc_patches,
        read_patch,
        read_patient_split,
    )
    from idc_sklearn.ensemble import (
        PatientStackingClassifier,
        PatientVotingClassifier,
    )
    from idc_sklearn.handcrafted import (
        BASELINES,
        ColorHistogram,
        ColorMoments,
        GLCMFeatures,
        HOGFeatures,
        LBPFeatures,
        make_baseline,
    )
    from idc_sklearn.html_report import write_html_report
    from idc_sklearn.metrics import (
        SCORING,
        paired_bootstrap,
        patient_predictions,
        patient_scores,
    )
    from idc_sklearn.network import PRESETS, MLBNBlock, MLBNInception
    from idc_sklearn.persistence import FileFormatError, load_model, save_model
    from idc_sklearn.plotting import (
        plot_comparison,
        plot_confusion_matrix,
        plot_learning_curves,
        plot_paired_differences,
        plot_patient_heatmap,
        plot_patient_scores,
        plot_precision_recall_curves,
        plot_roc_curves,
        plot_slide_heatmap,
        plot_slide_prediction,
        slide_image,
    )
    from idc_sklearn.pretrained import (
        DEFAULT_PRETRAINED,
        PRETRAINED,
        load_pretrained,
        pretrained_card,
    )
    from idc_sklearn.prior_shift import PatientPriorClassifier, adapt_to_patients
    from idc_sklearn.resampling import EpochResampler, PatchResampler
    from idc_sklearn.spatial import smooth_neighbours
    from idc_sklearn.split import PatientValidSplit
    from idc_sklearn.stain import MacenkoNormalizer, ReinhardNormalizer
    from idc_sklearn.wholeslide import (
        ARCHIVE_MPP,
        SlideResult,
        predict_slide,
        predict_slides,
        write_slide,
    )
    from idc_sklearn.wsinfer import export_wsinfer


__getattr__, __dir__ = lazy_namespace(__name__, _PUBLIC)
