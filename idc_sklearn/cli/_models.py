"""The models ``compare`` and ``train`` build: the network presets and the factory."""

from __future__ import annotations

from idc_sklearn._presets import PRESETS

CNN_MODELS = ("mlbn-inception", "inception-no-mlbn", "janowczyk-cnn", "cruz-roa-cnn")
# The MLBN network with features-hgb (idc_sklearn.ensemble): "mlbn+features" stacks
# their out-of-fold probabilities under a logistic regression, "mlbn+features-mean"
# averages them. Chosen by name only, never by default: the stack fits the network
# ENSEMBLE_INNER_FOLDS + 1 times in every fold, more than the README's main command
# can afford.
ENSEMBLE_MODELS = ("mlbn+features", "mlbn+features-mean")
ENSEMBLE_INNER_FOLDS = 3
# The MLBN network's sizes (idc_sklearn.PRESETS). "small", an eighth of the paper's
# widths: with the synthetic data's default size, 8 models and 3 folds took about 3
# minutes on 2 CPU cores (before the training recipe's oversampling and BatchNorm
# recalibration). "tiny", the smallest that trains: for smoke runs and the command's
# own tests; its scores mean nothing.
NETWORKS = {name: PRESETS[name] for name in ("tiny", "small", "paper")}
DEFAULT_EPOCHS = {"tiny": 5, "small": 5, "paper": 100}
# The small preset trains every CNN with the MLBN recipe's batch size: the CNN
# baselines' own 128 would leave them 3 optimiser steps an epoch on its data.
SMALL_BATCH_SIZE = 32


def widths(preset: str) -> str:
    """The widths of ``preset`` as the help and reports show them."""
    network = PRESETS[preset]
    return (
        f"filters {','.join(map(str, network['filters']))}, dense "
        f"{','.join(map(str, network['head_units']))}"
    )


def model_names() -> tuple[str, ...]:
    """The default models: the CNNs, then the handcrafted baselines (imported
    without torch)."""
    from idc_sklearn.baselines import BASELINES

    return (*CNN_MODELS, *BASELINES)


def model_choices() -> tuple[str, ...]:
    """Every model ``--models`` accepts: the default ones, then the ensembles."""
    return (*model_names(), *ENSEMBLE_MODELS)


def make_models(args, patch_shape, names=None, **params) -> dict:
    """The models ``names`` (default: ``--models``, else all but the ensembles),
    with ``params`` set on every CNN."""
    from sklearn.linear_model import LogisticRegression

    from idc_sklearn import (
        CruzRoaCNNClassifier,
        JanowczykCNNClassifier,
        MLBNInceptionClassifier,
        PatientStackingClassifier,
        PatientVotingClassifier,
        make_baseline,
    )

    names = names or args.models or model_names()
    common = {
        "patch_shape": patch_shape,
        "max_epochs": args.max_epochs or DEFAULT_EPOCHS[args.preset],
        "device": args.device,
        "verbose": 0,
        "random_state": args.random_state,
    }
    common.update(params)
    batch_size = args.batch_size or (
        SMALL_BATCH_SIZE if args.preset != "paper" else None
    )
    if batch_size is not None:
        common["batch_size"] = batch_size
    network = NETWORKS[args.preset]
    factories = {
        "mlbn-inception": lambda: MLBNInceptionClassifier(**network, **common),
        "inception-no-mlbn": lambda: MLBNInceptionClassifier(
            **network, multilevel_bn=False, **common
        ),
        "janowczyk-cnn": lambda: JanowczykCNNClassifier(
            crop_size=min(32, *patch_shape[:2]), **common
        ),
        "cruz-roa-cnn": lambda: CruzRoaCNNClassifier(**common),
    }

    def baseline(name):
        return make_baseline(
            name, patch_shape=patch_shape, random_state=args.random_state
        )

    def network_and_features():
        return [
            ("mlbn-inception", factories["mlbn-inception"]()),
            ("features-hgb", baseline("features-hgb")),
        ]

    factories["mlbn+features"] = lambda: PatientStackingClassifier(
        network_and_features(),
        final_estimator=LogisticRegression(class_weight="balanced"),
        cv=ENSEMBLE_INNER_FOLDS,
        stack_method="predict_proba",
    )
    factories["mlbn+features-mean"] = lambda: PatientVotingClassifier(
        network_and_features(), voting="soft"
    )
    return {
        name: factories[name]() if name in factories else baseline(name)
        for name in model_choices()
        if name in names
    }
