"""Creative effectiveness: predict a target such as CTR from a creative's image, text, tabular
columns and content-analysis features, with a gradient-boosting regressor (late fusion of the
modalities' features; missing modalities are missing values, which the model handles)."""
