"""Petitions, complaints and appeals (PQR) with CUN, Colombia (CRC regime, arts. 2.1.5.1-2.1.5.15)."""
