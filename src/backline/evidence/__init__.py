"""backline.evidence"""
