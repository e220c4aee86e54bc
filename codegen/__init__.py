"""torchonnx.codegen: checks the ATen-to-ONNX specs and generates code and tables from them.

Run `python -m torchonnx.codegen [--specs DIR] [--out DIR] [--check]`.
"""
