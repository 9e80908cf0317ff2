"""Stand-in SftChats tables shaped like annotate's output, for the sft tests."""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from tasks.common.answers import tagged
from tasks.common import schemas
from tasks.common.prompts import SFT_SYSTEM, answer_format, load_prompts
from tasks.common.storage import write_table

GENES = ["CD3D", "CD8A", "MS4A1", "LYZ", "NKG7", "GNLY", "FCGR3A", "CST3", "PPBP", "IL7R"]
TYPES = {"CD3D": "T cell", "CD8A": "T cell", "MS4A1": "B cell", "LYZ": "Monocyte", "NKG7": "NK cell",
         "GNLY": "NK cell", "FCGR3A": "Monocyte", "CST3": "Monocyte", "PPBP": "Platelet", "IL7R": "T cell"}


def chat(i: int, rng: random.Random) -> dict:
    prompts = load_prompts(None)
    top = rng.sample(GENES, 4)
    answer = TYPES[top[0]]
    user = (f"Which cell type is this? <cell>{', '.join(top)}</cell>\n\n"
            f"{answer_format(prompts, 'label', 'answer')}")
    reply = f"<think>{top[0]} is the top gene and marks {answer}.</think>\n" + tagged(answer)
    return {"id": f"p{i}", "family": "cell_type", "split": "train",
            "messages": [{"role": "system", "content": SFT_SYSTEM.format(tag="answer")},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": reply}]}


def write_chats(path: Path, n: int = 64, seed: int = 0) -> Path:
    rng = random.Random(seed)
    write_table(pd.DataFrame([chat(i, rng) for i in range(n)]), path, schemas.SftChats)
    return path
