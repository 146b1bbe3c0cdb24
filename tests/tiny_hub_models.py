"""Tiny random transformers models saved with save_pretrained, standing in for the hub's BLIP,
DETR, sentiment and NER weights: the real loading and inference code runs on them."""

from pathlib import Path

import torch

WORDS = ["a", "the", "sale", "shop", "now", "love", "hate", "red", "shoe", "paris", "acme", "buy", "photo", "of"]


def _tokenizer(folder: Path):
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizer(vocab_file=str(vocab))


def _bert_config(n_vocab: int, labels: list[str]):
    from transformers import BertConfig

    return BertConfig(vocab_size=n_vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=64,
                      id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})


def save_text_classifier(folder: Path, labels=("negative", "neutral", "positive")) -> Path:
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    tok = _tokenizer(folder)
    BertForSequenceClassification(_bert_config(len(tok), list(labels))).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_token_classifier(folder: Path) -> Path:
    from transformers import BertForTokenClassification

    torch.manual_seed(0)
    tok = _tokenizer(folder)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    BertForTokenClassification(_bert_config(len(tok), labels)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_blip(folder: Path) -> Path:
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    torch.manual_seed(0)
    tok = _tokenizer(folder)
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    config = BlipConfig(
        text_config=dict(vocab_size=len(tok), max_position_embeddings=64, bos_token_id=2, sep_token_id=3,
                         eos_token_id=3, pad_token_id=0, encoder_hidden_size=32, **small),
        vision_config=dict(image_size=32, patch_size=16, **small), projection_dim=32)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok)
    processor.save_pretrained(folder)
    return folder


def save_detr(folder: Path) -> Path:
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    torch.manual_seed(0)
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], out_features=["stage2"])
    labels = ["person", "shoe", "bottle"]
    config = DetrConfig(use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False,
                        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=5,
                        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    DetrForObjectDetection(config).save_pretrained(folder)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(folder)
    return folder
