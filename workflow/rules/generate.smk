# Synthetic event shards: one job per shard, so shards generate in parallel
# (locally or as many small cluster jobs). A shard's bytes depend only on the
# generator settings, the seed and the shard index.


rule generate_shard:
    input:
        layout=LAYOUT_MARKER,
        background=background_files,
    output:
        **shard_outputs(),
    log:
        "logs/generate_shard/{folder}_{index}.log",
    benchmark:
        "logs/generate_shard/{folder}_{index}.benchmark.tsv"
    threads: stage_resource("generate_shard", "threads", 1)
    resources:
        mem_mb=stage_resource("generate_shard", "mem_mb", 2000),
        disk_mb=stage_resource("generate_shard", "disk_mb", 2000),
        runtime=stage_resource("generate_shard", "runtime", 30),
    params:
        root=DATA_ROOT,
        settings=generator_settings,
        seed=config["seed"],
        fmt=SHARD_FORMAT,
    message:
        "Generating {wildcards.folder} shard {wildcards.index}"
    script:
        "../scripts/generate_shard.py"
