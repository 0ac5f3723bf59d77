"""Reference labelling: first-principles calculators as plug-ins and the recipes that use them."""
