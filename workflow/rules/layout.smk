# Data layout: the folder tree of the original method under the data root.


rule init_layout:
    output:
        marker=LAYOUT_MARKER,
    log:
        "logs/init_layout/init_layout.log",
    message:
        "Creating the data layout under {params.root}"
    params:
        root=DATA_ROOT,
    localrule: True
    script:
        "../scripts/init_layout.py"
