# Data layout: the folder tree of the original method under the data root.


rule init_layout:
    output:
        marker=LAYOUT_MARKER,
    log:
        "logs/init_layout/init_layout.log",
    localrule: True
    params:
        root=DATA_ROOT,
    message:
        "Creating the data layout under {params.root}"
    script:
        "../scripts/init_layout.py"
