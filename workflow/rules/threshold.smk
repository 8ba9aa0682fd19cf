# Choice of the classification threshold tau on the validation shards.


rule select_threshold:
    input:
        model="results/model/model.keras",
        validation=shard_files("denoising", *shard_range("validation")),
    output:
        threshold="results/model/threshold.txt",
        scan="results/model/threshold_scan.csv",
    log:
        "logs/select_threshold/select_threshold.log",
    benchmark:
        "logs/select_threshold/select_threshold.benchmark.tsv"
    container:
        TENSORFLOW_IMAGE
    threads: stage_resource("select_threshold", "threads", 2)
    resources:
        mem_mb=stage_resource("select_threshold", "mem_mb", 8000),
        disk_mb=stage_resource("select_threshold", "disk_mb", 10000),
        runtime=stage_resource("select_threshold", "runtime", 60),
        gpu=stage_resource("select_threshold", "gpu", 0),
        gpu_cap=stage_resource("select_threshold", "gpu_cap", ""),
    params:
        threshold=config["threshold"],
    message:
        "Choosing the threshold by {params.threshold[metric]} on the validation shards"
    script:
        "../scripts/select_threshold.py"
