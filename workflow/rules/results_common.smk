# Helpers of the evaluation, plotting, report and denoising rules: which
# inputs exist (measured events, compared models) and which outputs are
# wanted. No rules are defined here.

EVALUATION_DIR = "results/evaluation"
PLOTS_DIR = "results/plots"
MODEL_FILE = "results/model/model.keras"
THRESHOLD_FILE = "results/model/threshold.txt"
HISTORY_FILE = "results/model/history.csv"

EVALUATION_OUTPUTS = {
    "metrics": f"{EVALUATION_DIR}/metrics.csv",
    "metrics_json": f"{EVALUATION_DIR}/metrics.json",
    "measured": f"{EVALUATION_DIR}/measured.csv",
    "measured_json": f"{EVALUATION_DIR}/measured.json",
    "linefit": f"{EVALUATION_DIR}/linefit.csv",
    "curves": f"{EVALUATION_DIR}/curves.csv",
    "amplitudes": f"{EVALUATION_DIR}/amplitudes.csv",
    "examples": f"{EVALUATION_DIR}/examples.npz",
}


def compare_files():
    """Model and threshold files of the evaluation.compare entries."""
    files = []
    for entry in config["evaluation"].get("compare", []):
        files.append(entry["path"])
        threshold = entry.get("threshold")
        if isinstance(threshold, str):
            files.append(threshold)
        elif threshold is None:
            files.append(os.path.join(os.path.dirname(entry["path"]), "threshold.txt"))
    return files


def measured_inputs():
    """Measured event folders and label file, when all are present; else none.

    The evaluation reports the measured-data figures as not available when
    any of them is missing, so the rule must not require them.
    """
    from track_denoiser.evaluation import find_measured_data

    measured, _ = find_measured_data(DATA_ROOT, config["evaluation"]["labels"])
    if measured is None:
        return []
    return [str(measured.noisy), str(measured.clean), str(measured.labels)]


def evaluation_inputs(wildcards):
    """Named inputs of evaluate_model."""
    return {
        "model": MODEL_FILE,
        "threshold": THRESHOLD_FILE,
        "test": shard_files("denoising", *shard_range("test")),
        "labeling": shard_files("labeling", *shard_range("labeling_test")),
        "compare": compare_files(),
        "measured": measured_inputs(),
    }


def example_plots():
    """Example-event figures that plot_results draws."""
    count = config["evaluation"]["n_example_events"]
    return [f"{PLOTS_DIR}/example_{i}.png" for i in range(count)]


def summary_plots():
    """Figures other than the example events, by name."""
    return {
        "roc": f"{PLOTS_DIR}/roc.png",
        "pr": f"{PLOTS_DIR}/pr.png",
        "training": f"{PLOTS_DIR}/training.png",
        "amplitudes": f"{PLOTS_DIR}/amplitudes.png",
    }


def denoise_input():
    """The folder of measured events to denoise; empty when none is configured."""
    folder = config["denoise"]["input"]
    if folder and not os.path.isdir(folder):
        raise WorkflowError(
            f"config denoise.input = {folder!r} is not a folder; give a folder of "
            "track<N>.txt events or leave it empty to skip denoising"
        )
    return folder


def run_settings():
    """Settings of the run shown at the top of the report."""
    training = config["training"]
    first, last = shard_range("train")
    events = config["generator"]["events_per_shard"]
    return {
        "network": training["architecture"],
        "loss": training["loss"],
        "training events": (last - first) * events,
        "maximum epochs": training["epochs"],
        "batch size": training["batch_size"],
        "learning rate": training["learning_rate"],
        "track entry": config["generator"]["entry"],
        "noise mode (denoising, labeling)": (
            f"{config['shards']['denoising_noise']}, {config['shards']['labeling_noise']}"
        ),
        "seed": config["seed"],
    }
