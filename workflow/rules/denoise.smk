# Denoising of measured events with the trained model: one rule over the
# whole folder configured as denoise.input (none when it is empty).


rule denoise_events:
    input:
        model=MODEL_FILE,
        threshold=THRESHOLD_FILE,
        events=denoise_input() or [],
    output:
        folder=directory("results/denoised"),
    log:
        "logs/denoise_events/denoise_events.log",
    benchmark:
        "logs/denoise_events/denoise_events.benchmark.tsv"
    threads: stage_resource("denoise_events", "threads", 2)
    resources:
        mem_mb=stage_resource("denoise_events", "mem_mb", 8000),
        disk_mb=stage_resource("denoise_events", "disk_mb", 10000),
        runtime=stage_resource("denoise_events", "runtime", 60),
        gpu=stage_resource("denoise_events", "gpu", 0),
        gpu_cap=stage_resource("denoise_events", "gpu_cap", ""),
    params:
        batch_size=config["denoise"]["batch_size"],
        skip_invalid=config["denoise"]["skip_invalid"],
        recognition=config["evaluation"]["recognition"],
        linefit=config["evaluation"]["linefit"],
    message:
        "Denoising the measured events in {input.events}"
    script:
        "../scripts/denoise_events.py"


if denoise_input():
    EXTRA_TARGETS.append("results/denoised")
