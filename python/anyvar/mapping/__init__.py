"""Mappings between variations (AnyVar's ``anyvar.mapping``): GRCh37 <-> GRCh38 liftover."""
