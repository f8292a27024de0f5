"""backline.storage"""
