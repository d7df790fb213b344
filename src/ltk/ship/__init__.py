"""Use and ship an adapted model: talk to it (``ltk chat``) and export it (``ltk export``) as merged
safetensors with its card, as GGUF through llama.cpp's own converter (checked by loading it back), as an
Ollama Modelfile, and to the Hugging Face hub.

One module per step: ``source`` (a model folder or a run folder -> the weights to use), ``template`` (the
chat template and end-of-turn tokens), ``hf``, ``gguf``, ``ollama``, ``hub``, ``export`` (the whole
command) and ``chat``.
"""
