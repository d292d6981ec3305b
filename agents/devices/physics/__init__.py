"""Pure physics of the emulated devices: no state, no clock, no I/O.

Every formula comes from /work/shared/reference/physics.md (decoy-state BB84 after Ma, Qi, Zhao,
Lo 2005; Raman noise after Eraerds 2010 and Patel 2012; memory decoherence as in NetSquid), so
the twins can be checked against the literature one function at a time. The finite-key bound
(`finite_key`) follows Lim, Curty, Walenta, Xu and Zbinden, PRA 89, 022307 (2014); FINITE_KEY.md
says how the QKD twin uses it. An intercept-resend eavesdropper (`intercept_resend`) raises the
link's optical error to e_d + f (1/4 - e_d/2); EAVESDROPPER.md gives the formula and what the twin
does with it.
"""
