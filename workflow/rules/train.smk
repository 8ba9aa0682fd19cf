# Training of the denoising network. The resumable state lives in
# results/model/backup, outside the rule's outputs, so Snakemake keeps it when
# a job is killed and the rerun continues after the last finished epoch.


rule train_model:
    input:
        train=shard_files("denoising", *shard_range("train")),
        validation=shard_files("denoising", *shard_range("validation")),
    output:
        model="results/model/model.keras",
        history_csv="results/model/history.csv",
        history_json="results/model/history.json",
    log:
        "logs/train_model/train_model.log",
    benchmark:
        "logs/train_model/train_model.benchmark.tsv"
    container:
        TENSORFLOW_IMAGE
    threads: stage_resource("train_model", "threads", 4)
    resources:
        mem_mb=stage_resource("train_model", "mem_mb", 16000),
        disk_mb=stage_resource("train_model", "disk_mb", 20000),
        runtime=stage_resource("train_model", "runtime", 240),
        gpu=stage_resource("train_model", "gpu", 0),
        gpu_cap=stage_resource("train_model", "gpu_cap", ""),
    params:
        training=config["training"],
        require_gpu=stage_resource("train_model", "gpu", 0) > 0,
        backup_dir="results/model/backup",
    message:
        "Training the {params.training[architecture]} network"
    script:
        "../scripts/train_model.py"
