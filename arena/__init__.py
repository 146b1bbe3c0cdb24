"""The blind A/B arena: round selection and side assignment (pure logic) and the Gradio tab."""
