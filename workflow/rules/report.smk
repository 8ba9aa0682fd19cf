# Figures of the evaluation and one HTML page that shows them with the
# metric tables.


rule plot_results:
    input:
        metrics=EVALUATION_OUTPUTS["metrics"],
        curves=EVALUATION_OUTPUTS["curves"],
        amplitudes=EVALUATION_OUTPUTS["amplitudes"],
        examples=EVALUATION_OUTPUTS["examples"],
        history=HISTORY_FILE,
    output:
        **summary_plots(),
        examples=example_plots(),
    log:
        "logs/plot_results/plot_results.log",
    localrule: True
    params:
        n_examples=config["evaluation"]["n_example_events"],
    message:
        "Plotting curves, training history, amplitudes and example events"
    script:
        "../scripts/plot_results.py"


rule build_report:
    input:
        metrics=EVALUATION_OUTPUTS["metrics"],
        metrics_json=EVALUATION_OUTPUTS["metrics_json"],
        measured=EVALUATION_OUTPUTS["measured"],
        measured_json=EVALUATION_OUTPUTS["measured_json"],
        linefit=EVALUATION_OUTPUTS["linefit"],
        plots=list(summary_plots().values()) + example_plots(),
    output:
        html="results/report.html",
    log:
        "logs/build_report/build_report.log",
    localrule: True
    params:
        embed_images=True,
        run_settings=run_settings(),
    message:
        "Writing results/report.html"
    script:
        "../scripts/build_report.py"


EXTRA_TARGETS.append("results/report.html")
