# Evaluation: the trained model, the compared models and the classical
# baseline on the same held-out synthetic events, and on hand-labelled
# measured events when those are present.


rule evaluate_model:
    input:
        unpack(evaluation_inputs),
    output:
        **EVALUATION_OUTPUTS,
    log:
        "logs/evaluate_model/evaluate_model.log",
    benchmark:
        "logs/evaluate_model/evaluate_model.benchmark.tsv"
    container:
        TENSORFLOW_IMAGE
    threads: stage_resource("evaluate_model", "threads", 2)
    resources:
        mem_mb=stage_resource("evaluate_model", "mem_mb", 8000),
        disk_mb=stage_resource("evaluate_model", "disk_mb", 10000),
        runtime=stage_resource("evaluate_model", "runtime", 60),
        gpu=stage_resource("evaluate_model", "gpu", 0),
        gpu_cap=stage_resource("evaluate_model", "gpu_cap", ""),
    params:
        data_root=DATA_ROOT,
        shard_format=SHARD_FORMAT,
        test_range=config["shards"]["test"],
        labeling_range=config["shards"]["labeling_test"],
        evaluation=config["evaluation"],
    message:
        "Evaluating the trained model, compared models and the baseline"
    script:
        "../scripts/evaluate_model.py"
