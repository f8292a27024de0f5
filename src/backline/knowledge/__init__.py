"""backline.knowledge"""
