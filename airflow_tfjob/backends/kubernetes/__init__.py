"""Run a TFJob on Kubernetes through the Kubeflow training operator."""
