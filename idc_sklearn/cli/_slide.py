"""``idc-sklearn slide``: slides to IDC maps, QuPath regions and summaries."""

from __future__ import annotations

import contextlib

from idc_sklearn.cli._common import (
    CommandError,
    add_quiet,
    check_output,
    command_parser,
    positive_int,
    say,
)
from idc_sklearn.cli._saved_models import add_inference, model_help, read_model

SLIDE_EXAMPLES = """\
examples:
  idc-sklearn slide mlbn-small slide.svs --output idc_slides
  idc-sklearn slide mlbn.safetensors slides/*.tif --output maps --threshold 0.6
  idc-sklearn slide mlbn-small scan.tif --mpp 0.25 --output maps --workers 2
  idc-sklearn slide mlbn-small cohort/*.svs --output maps --scheduler tcp://head:8786

written for each SLIDE, in DIR/<slide name>/:
  heatmap.png       the thumbnail with the IDC probability over the tissue
  probability.tif   the probability per tile (float32; NaN off the tissue)
  tiles.csv         x, y (level-0 pixels), row, col, tissue, probability
  regions.geojson   IDC regions, tiles above --threshold merged; QuPath: File >
                    Import objects
  summary.json      tissue and IDC areas (mm2), IDC fraction of tissue
  manifest.json     written last: each file's size and CRC-32; a rerun skips the
                    slides whose files it verifies, and redoes the others
and DIR/slides.csv: one row per slide, its summary or its error."""


def add_parser(commands) -> None:
    slide = command_parser(
        commands,
        "slide",
        run,
        help="predict whole-slide images: IDC maps, QuPath regions, summaries",
        description=(
            "Cut each whole-slide image (any format OpenSlide reads, or tiffslide\n"
            "where it cannot) into tiles of the model's patch size at the archive's\n"
            "resolution, predict the tiles that hold tissue, and write the maps,\n"
            "regions and summary of each (idc_sklearn.predict_slide). A slide that\n"
            "fails is reported and the others are still done; the exit status is 1\n"
            "if any failed. A rerun skips the slides already done (their files\n"
            "checked), so an interrupted run resumes. With --scheduler, the slides\n"
            "run as tasks on a Dask cluster, the model sent once to each worker\n"
            "(idc_sklearn.predict_slides). Needs the slides extra: pip install "
            '"idc_sklearn[slides]"; --scheduler also the cluster extra.'
        ),
        epilog=SLIDE_EXAMPLES,
    )
    slide.add_argument("model", metavar="MODEL", help=model_help())
    slide.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files")
    slide.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the folder to write"
    )
    group = slide.add_argument_group("tiles")
    group.add_argument(
        "--mpp",
        type=float,
        metavar="UM",
        help="the slides' level-0 microns per pixel (default: read from each slide)",
    )
    group.add_argument(
        "--target-mpp",
        type=float,
        default=4.0,
        metavar="UM",
        help="microns per pixel the model was trained at (default: 4.0, the archive's)",
    )
    group.add_argument(
        "--min-tissue",
        type=float,
        default=0.25,
        metavar="F",
        help="least tissue fraction of a tile to predict it (default: 0.25)",
    )
    group.add_argument(
        "--tissue-threshold",
        default="0.05",
        metavar="S",
        help="saturation above which a thumbnail pixel is tissue, or 'otsu' to pick "
        "it per slide, for glass tinted above 0.05 (default: 0.05)",
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="P",
        help="IDC where the probability exceeds this, for the regions and the "
        "summary (default: the model's own, chosen by cross-validation for "
        "mlbn-hgb and mlbn-small-all; 0.5 for other models)",
    )
    group.add_argument(
        "--workers",
        type=positive_int(0),
        metavar="N",
        help="processes reading tiles while the model predicts (default: none where "
        "the model runs on the CPU, up to 4 on a GPU)",
    )
    add_inference(slide)
    cohort = slide.add_argument_group("cohort")
    cohort.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler (tcp://host:8786): run the slides as tasks on its "
        "workers, which must see the slides and DIR at the same paths (default: "
        "here, one after another)",
    )
    cohort.add_argument(
        "--redo",
        action="store_true",
        help="predict every slide again, even those whose files are complete",
    )
    add_quiet(slide, "only errors are printed")


def run(parser, args, argv) -> int:
    """Run ``slide``: the slides through predict_slides; the failures reported."""
    for option, value in (
        ("--threshold", args.threshold),
        ("--min-tissue", args.min_tissue),
    ):
        if value is not None and not 0 <= value <= 1:
            parser.error(f"{option} {value}: expected a number in [0, 1]")
    tissue_threshold = _tissue_threshold(parser, args.tissue_threshold)
    for option, value in (("--mpp", args.mpp), ("--target-mpp", args.target_mpp)):
        if value is not None and not value > 0:
            parser.error(f"{option} {value}: expected a positive number")
    output = check_output("--output", args.output, folder=True)
    if args.scheduler is not None:
        _needs_distributed()
    model = read_model(parser, args.model, args.device)
    from idc_sklearn.cli._saved_models import set_inference

    patch_shape = set_inference(model, args)
    from idc_sklearn.wholeslide import predict_slides

    with _client(args.scheduler) as client:
        try:
            table = predict_slides(
                model,
                args.slides,
                output,
                client=client,
                threshold=args.threshold,
                resume=not args.redo,
                progress=not args.quiet,
                mpp=args.mpp,
                target_mpp=args.target_mpp,
                tile_size=patch_shape[0],
                min_tissue=args.min_tissue,
                tissue_threshold=tissue_threshold,
                num_workers="auto" if args.workers is None else args.workers,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    for row in table.itertuples():
        if row.status == "failed":
            say_error(args, row.slide, row.error)
        else:
            say(
                args,
                f"{row.slide}: {row.tiles:,} tissue tiles, IDC {row.idc_mm2:.2f} of "
                f"{row.tissue_mm2:.2f} mm2 ({row.idc_fraction:.1%}); "
                + ("done before, its files checked" if row.skipped else "wrote")
                + f" {output / row.name}/",
            )
    failed = int((table["status"] == "failed").sum())
    say(
        args,
        f"Done: {len(table) - failed} of {len(table)} slides; wrote "
        f"{output / 'slides.csv'}.",
    )
    return 1 if failed else 0


def _needs_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise CommandError(
            "--scheduler needs dask.distributed: pip install 'idc_sklearn[cluster]'"
        ) from None


@contextlib.contextmanager
def _client(address: str | None):
    """A Client of the scheduler at ``address``, closed at the end; None without."""
    if address is None:
        yield None
        return
    from distributed import Client

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise CommandError(f"--scheduler {address}: {exc}") from None
    with client:
        yield client


def _tissue_threshold(parser, text: str):
    """``--tissue-threshold``: "otsu", or a number in [0, 1]."""
    if text == "otsu":
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 1:
        parser.error(
            f"--tissue-threshold {text}: expected 'otsu' or a number in [0, 1]"
        )
    return value


def say_error(args, slide: str, error: str) -> None:
    import sys

    from idc_sklearn.cli._common import PROG

    print(f"{PROG} slide: error: {slide}: {error}", file=sys.stderr, flush=True)
