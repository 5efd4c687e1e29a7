"""MEND (Mitchell et al., ICLR 2022) as one of the knowledge editors (``--editor mend``): a
network that turns the factors of a gradient into an edit, trained on the axis's train
requests as the LFTF paper did (section 3.5), then applied one request after another."""
