"""idc_sklearn: the MLBN Inception network for IDC patches as a sklearn estimator.

Every public name is listed in ``_PUBLIC`` with the module that defines it, so a
reader finds any of them in one hop. They are imported on first use (PEP 562), which
keeps ``import idc_sklearn.datasets`` free of torch.
"""

from __future__ import annotations

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
    "SlideResult": "idc_sklearn.wholeslide",
    "ARCHIVE_MPP": "idc_sklearn.wholeslide",
    "write_slide": "idc_sklearn.wholeslide",
    # saved models (safetensors, no pickle)
    "save_model": "idc_sklearn.persistence",
    "load_model": "idc_sklearn.persistence",
    "FileFormatError": "idc_sklearn.persistence",
    # pretrained models shipped in the package
    "load_pretrained": "idc_sklearn.pretrained",
    "pretrained_card": "idc_sklearn.pretrained",
    "PRETRAINED": "idc_sklearn.pretrained",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_namespace(__name__, _PUBLIC)
