"""Run a job on Kubernetes: a TFJob (the Kubeflow training operator) or a TrainJob (Trainer v2)."""
