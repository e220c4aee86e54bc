import sys

from torchonnx.codegen.main import main

sys.exit(main())
