"""Print the requirements of ``litellm[proxy]`` that the package index can satisfy.

``litellm[proxy]==1.110.2`` does not install here: its ``proxy`` extra pins
sub-packages (``litellm-proxy``, ``litellm-proxy-extras``, ``litellm-enterprise``)
at versions the index lacks. This reads the extra's requirement list from the
wheel's METADATA, drops ``litellm-proxy`` (absent altogether; the proxy code
itself ships inside the ``litellm`` wheel) and relaxes the other two exact pins
to "any available version".

Usage: python litellm_reqs.py path/to/litellm-X.whl > requirements.txt
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser

from packaging.requirements import Requirement

DROP = {"litellm-proxy"}
UNPIN = {"litellm-proxy-extras", "litellm-enterprise"}


def proxy_requirements(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode())
    out = []
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or not req.marker.evaluate({"extra": "proxy"}):
            continue
        if req.marker.evaluate({"extra": ""}):
            continue  # a base requirement: pip resolves it from litellm itself
        if req.name in DROP:
            continue
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        spec = "" if req.name in UNPIN else str(req.specifier)
        out.append(f"{req.name}{extras}{spec}")
    return out


if __name__ == "__main__":
    print("\n".join(proxy_requirements(sys.argv[1])))
