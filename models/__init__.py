"""The IDE model: ``build_model(cfg)``, checkpoint I/O, and the output dataclass."""

from models.build import build_model, export_published, extract_state_dict, load_checkpoint
from models.ide import IDE, IDEOutput

__all__ = ["IDE", "IDEOutput", "build_model", "export_published", "extract_state_dict", "load_checkpoint"]
