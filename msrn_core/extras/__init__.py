"""Extras: the related methods the tutorial sets beside MSRN (notebooks 07 and 08).

- ``dsdl``       DSDL: label vectors as a dictionary, closed-form ridge coefficients as scores
- ``sdl``        SDL: k principal vectors per image, a diversity-weighted ranking loss
- ``zero_shot``  the zero-shot protocol: seen/unseen split, ZSL/GZSL metrics, random baseline
"""
