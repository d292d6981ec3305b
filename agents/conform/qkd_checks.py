"""QKD behaviour checks."""


async def run_check(nctx, gctx, check, ev, timeout):
    raise NotImplementedError
